// JSON strings of bounded length (minLength / maxLength, counted in code
// points) as EBNF, shaped so that xgrammar computes their masks fast.
//
// xgrammar's converter writes "\"" c^min s_1 "\"" with s_i ::= "" | c s_{i+1}:
// each s_i may end empty, so almost every token of the vocabulary can run
// past the end of s_i into whatever follows it, and xgrammar checks each such
// token at run time, for every mask inside the string (hundreds of
// microseconds a mask). Here the closing quote is inside each rule and each
// rule ends with the lookahead every JSON string has (spaces, then one of
// , } ] :), so a token that runs past the string is decided from the rule
// alone:
//
//   rule ::= "\"" c^min r_1
//   r_i  ::= ("\"" | c r_{i+1}) (= [ ]* [,}\]:])        i < k = max - min
//   r_k  ::= ("\"" | c "\"")    (= [ ]* [,}\]:])
//
// c is one code point a JSON string holds unescaped (JSON_UNESCAPED_CHAR, the
// class xgrammar's bounded strings use once made safe by json-string-chars.ts);
// like xgrammar's, these strings hold no escapes.

import { JSON_UNESCAPED_CHAR as CHAR } from './json-string-chars.js';
import type { BuiltRule } from './schema-rules.js';

/** What follows any JSON string: spaces, then a delimiter (xgrammar's own basic_string_sub carries the same). */
export const JSON_STRING_END_LOOKAHEAD = '(=([\\u0020]* [,}\\]:]))';
const QUOTE = '"\\""';
/** Longer bounds stay with xgrammar (one rule per optional code point). */
const MAX_BUILT_LENGTH = 1024;

const STRING_KEYWORDS = new Set(['type', 'minLength', 'maxLength', 'title', 'description', 'default', 'examples', '$comment']);

/** The rule of a string subschema bounded by maxLength (and perhaps minLength) alone, else null. */
export function boundedStringRule(schema: Record<string, unknown>, name: string): BuiltRule | null {
  if (schema['type'] !== 'string' || !Object.keys(schema).every((key) => STRING_KEYWORDS.has(key))) return null;
  const max = schema['maxLength'];
  const min = schema['minLength'] ?? 0;
  if (typeof max !== 'number' || typeof min !== 'number' || !Number.isInteger(max) || !Number.isInteger(min)) return null;
  if (min < 0 || min > max || max > MAX_BUILT_LENGTH) return null;
  return stringLengthEbnf(min, max, name);
}

/** JSON strings of min to max code points (0 <= min <= max), rules named `${name}_<i>`. */
export function stringLengthEbnf(min: number, max: number, name: string): BuiltRule {
  const mandatory = Array<string>(min).fill(CHAR);
  const k = max - min;
  if (k === 0) return { rule: `(${['"\\""', ...mandatory, QUOTE].join(' ')})`, definitions: [] };
  const definitions: string[] = [];
  for (let i = 1; i <= k; i++) {
    const next = i < k ? `${name}_${i + 1}` : QUOTE;
    definitions.push(`${name}_${i} ::= ((${QUOTE}) | (${CHAR} ${next})) ${JSON_STRING_END_LOOKAHEAD}`);
  }
  return { rule: `(${['"\\""', ...mandatory, `${name}_1`].join(' ')})`, definitions };
}
