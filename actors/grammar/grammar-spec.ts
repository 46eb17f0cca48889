// What a request asks its output to match: the engine's form of OpenAI's
// response_format and vLLM's structured_outputs / guided_* fields (the
// gateway maps those: gateway/structured-output.ts). Plain data, so it
// travels in GenerationParams to the scheduler and back after a restart.

export type GrammarSpec =
  /** Any JSON value (OpenAI's json_object asks for an object; vLLM's builtin JSON grammar allows any). */
  | { type: 'json_object' }
  /** A JSON document valid against `schema`. */
  | { type: 'json_schema'; schema: Record<string, unknown> | boolean }
  /** A string matching the regular expression (the whole output). */
  | { type: 'regex'; pattern: string }
  /** Exactly one of these strings. */
  | { type: 'choice'; choices: string[] }
  /** An EBNF grammar (xgrammar's dialect, GBNF-like; root rule `root`). */
  | { type: 'grammar'; grammar: string };

export class GrammarSpecError extends RangeError {
  override name = 'GrammarSpecError';
  /** `field`: the request field it came from, for the 400's message (e.g. "response_format.json_schema.schema"). */
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** Throws GrammarSpecError (field `structuredOutput`) when `spec` is not a GrammarSpec. */
export function validateGrammarSpec(spec: unknown, field = 'structuredOutput'): asserts spec is GrammarSpec {
  const fail = (why: string): never => {
    throw new GrammarSpecError(field, why);
  };
  if (typeof spec !== 'object' || spec === null) fail('must be an object');
  const s = spec as Record<string, unknown>;
  switch (s.type) {
    case 'json_object':
      return;
    case 'json_schema':
      if (typeof s.schema !== 'boolean' && (typeof s.schema !== 'object' || s.schema === null || Array.isArray(s.schema))) fail('schema must be a JSON schema (an object or a boolean)');
      return;
    case 'regex':
      if (typeof s.pattern !== 'string' || s.pattern.length === 0) fail('pattern must be a non-empty string');
      return;
    case 'choice':
      if (!Array.isArray(s.choices) || s.choices.length === 0 || !s.choices.every((c) => typeof c === 'string' && c.length > 0)) {
        fail('choices must be a non-empty list of non-empty strings');
      }
      return;
    case 'grammar':
      if (typeof s.grammar !== 'string' || s.grammar.trim().length === 0) fail('grammar must be a non-empty EBNF string');
      return;
    default:
      fail(`type must be json_object, json_schema, regex, choice or grammar, got ${JSON.stringify(s.type)}`);
  }
}

/** The cache key of a spec: equal keys compile to the same grammar. */
export function grammarKey(spec: GrammarSpec): string {
  return JSON.stringify(spec);
}

/** The structural tag that `regex` and `choice` compile through (xgrammar's format objects). */
export function structuralTagOf(spec: Extract<GrammarSpec, { type: 'regex' | 'choice' }>): Record<string, unknown> {
  if (spec.type === 'regex') return { type: 'structural_tag', format: { type: 'regex', pattern: spec.pattern } };
  return { type: 'structural_tag', format: { type: 'or', elements: spec.choices.map((value) => ({ type: 'const_string', value })) } };
}
