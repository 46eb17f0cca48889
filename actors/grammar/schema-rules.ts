// Subschemas whose grammar Troupe builds itself instead of xgrammar's JSON
// schema converter: bounded numbers (json-number-range.ts: xgrammar's admit
// values past the bounds) and length-bounded strings (json-string-length.ts:
// xgrammar's make every mask of the string slow to compute).
//
// Each such subschema is replaced by a placeholder string constant before the
// schema goes to xgrammar; in the EBNF xgrammar prints, the placeholder's
// literal ("\"<placeholder>\"") is then replaced by the rule built here, and
// the rule's definitions are appended. The placeholders carry a random nonce,
// so no constant of the schema itself can be mistaken for one.
import { randomBytes } from 'node:crypto';
import { boundedNumberRule } from './json-number-range.js';
import { boundedStringRule } from './json-string-length.js';

/** An EBNF expression and the rules it refers to. */
export interface BuiltRule {
  rule: string;
  definitions: string[];
}

const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SCHEMA_VALUES = ['items', 'additionalProperties', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems'];

/** The schema with each subschema built here replaced by a placeholder constant, and each placeholder's rule. */
export function withBuiltRules(schema: unknown): { schema: unknown; rules: Map<string, BuiltRule> } {
  const rules = new Map<string, BuiltRule>();
  const nonce = randomBytes(6).toString('hex');
  const visit = (node: unknown): unknown => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return node;
    const s = node as Record<string, unknown>;
    const name = `troupe_rule_${nonce}_${rules.size}`;
    const built = boundedNumberRule(s, name) ?? boundedStringRule(s, name);
    if (built !== null) {
      const placeholder = `troupe-rule-${nonce}-${rules.size}`;
      rules.set(placeholder, built);
      return { const: placeholder };
    }
    const out: Record<string, unknown> = { ...s };
    for (const key of SCHEMA_MAPS) {
      const map = s[key];
      if (typeof map === 'object' && map !== null && !Array.isArray(map)) {
        out[key] = Object.fromEntries(Object.entries(map).map(([k, sub]) => [k, visit(sub)]));
      }
    }
    for (const key of SCHEMA_LISTS) if (Array.isArray(s[key])) out[key] = (s[key] as unknown[]).map(visit);
    for (const key of SCHEMA_VALUES) if (key in s) out[key] = Array.isArray(s[key]) ? (s[key] as unknown[]).map(visit) : visit(s[key]);
    return out;
  };
  return { schema: visit(schema), rules };
}

/** `ebnf` with each placeholder's string literal replaced by its rule, and the rule's definitions added. */
export function substituteBuiltRules(ebnf: string, rules: Map<string, BuiltRule>): string {
  let out = ebnf;
  for (const [placeholder, { rule, definitions }] of rules) {
    out = out.split(`"\\"${placeholder}\\""`).join(rule);
    if (definitions.length > 0) out = `${out.trimEnd()}\n${definitions.join('\n')}\n`;
  }
  return out;
}
