// The request fields that ask for structured output, as the engine's
// GrammarSpec (actors/grammar/grammar-spec.ts), with the field each came
// from so that a bad schema, regex or grammar is a 400 naming it:
//
//   response_format {"type": "json_object"}                       -> json_object
//   response_format {"type": "json_schema", "json_schema":
//                     {"name", "schema", "strict"}}                -> json_schema
//   structured_outputs {"json" | "regex" | "choice" | "grammar"}   (vLLM)
//   guided_json / guided_regex / guided_choice / guided_grammar    (vLLM, older)
//   response_format {"type": "text"}                               -> nothing
//
// At most one of them may be given. Plain functions, no I/O.
import type { GrammarSpec } from '../actors/grammar/grammar-spec.js';
import { badRequest } from './errors.js';

export interface StructuredOutput {
  spec: GrammarSpec;
  /** The request field it came from (for errors). */
  field: string;
}

/** The structured output a request asks for, or null; throws a 400 naming the field at fault. */
export function structuredOutputOf(request: Record<string, unknown>): StructuredOutput | null {
  const found: StructuredOutput[] = [];
  const rf = request['response_format'];
  if (present(rf)) {
    const r = responseFormat(rf);
    if (r) found.push(r);
  }
  const so = request['structured_outputs'];
  if (present(so)) found.push(vllmStructured(so));
  for (const [field, kind] of [['guided_json', 'json'], ['guided_regex', 'regex'], ['guided_choice', 'choice'], ['guided_grammar', 'grammar']] as const) {
    if (present(request[field])) found.push(vllmKind(kind, request[field], field));
  }
  if (found.length > 1) {
    throw badRequest(`only one of ${found.map((f) => f.field).join(', ')} may be given: each asks for a different structure`, found[1]!.field);
  }
  return found[0] ?? null;
}

function responseFormat(value: unknown): StructuredOutput | null {
  if (!isObject(value)) throw badRequest('response_format must be an object such as {"type": "json_schema", "json_schema": {...}}', 'response_format');
  switch (value['type']) {
    case 'text':
      return null;
    case 'json_object':
      return { spec: { type: 'json_object' }, field: 'response_format' };
    case 'json_schema': {
      const js = value['json_schema'];
      if (!isObject(js)) throw badRequest('response_format.json_schema must be an object with a name and a schema', 'response_format.json_schema');
      if (present(js['name']) && (typeof js['name'] !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(js['name']))) {
        throw badRequest('response_format.json_schema.name must be a-z, A-Z, 0-9, underscores and dashes, at most 64 characters', 'response_format.json_schema.name');
      }
      if (present(js['strict']) && typeof js['strict'] !== 'boolean') throw badRequest('response_format.json_schema.strict must be true or false', 'response_format.json_schema.strict');
      // OpenAI: a missing schema means any JSON object
      const schema = present(js['schema']) ? js['schema'] : { type: 'object' };
      return { spec: jsonSchema(schema, 'response_format.json_schema.schema'), field: 'response_format.json_schema.schema' };
    }
    default:
      throw badRequest(`response_format.type must be "text", "json_object" or "json_schema", got ${JSON.stringify(value['type'])}`, 'response_format.type');
  }
}

function vllmStructured(value: unknown): StructuredOutput {
  if (!isObject(value)) throw badRequest('structured_outputs must be an object with one of json, regex, choice, grammar', 'structured_outputs');
  const kinds = (['json', 'regex', 'choice', 'grammar'] as const).filter((k) => present(value[k]));
  if (present(value['json_object']) && value['json_object'] === true) return { spec: { type: 'json_object' }, field: 'structured_outputs.json_object' };
  if (kinds.length !== 1) throw badRequest(`structured_outputs must set exactly one of json, regex, choice, grammar${kinds.length ? `, got ${kinds.join(', ')}` : ''}`, 'structured_outputs');
  const kind = kinds[0]!;
  return vllmKind(kind, value[kind], `structured_outputs.${kind}`);
}

function vllmKind(kind: 'json' | 'regex' | 'choice' | 'grammar', value: unknown, field: string): StructuredOutput {
  switch (kind) {
    case 'json': {
      // vLLM takes the schema as an object or as its JSON text
      let schema = value;
      if (typeof value === 'string') {
        try {
          schema = JSON.parse(value);
        } catch {
          throw badRequest(`${field} must be a JSON schema (an object, or its JSON text)`, field);
        }
      }
      return { spec: jsonSchema(schema, field), field };
    }
    case 'regex':
      if (typeof value !== 'string' || value.length === 0) throw badRequest(`${field} must be a non-empty regular expression`, field);
      return { spec: { type: 'regex', pattern: value }, field };
    case 'choice':
      if (!Array.isArray(value) || value.length === 0 || !value.every((c) => typeof c === 'string' && c.length > 0)) {
        throw badRequest(`${field} must be a non-empty list of non-empty strings`, field);
      }
      return { spec: { type: 'choice', choices: value as string[] }, field };
    case 'grammar':
      if (typeof value !== 'string' || value.trim().length === 0) throw badRequest(`${field} must be a non-empty EBNF grammar`, field);
      return { spec: { type: 'grammar', grammar: value }, field };
  }
}

function jsonSchema(schema: unknown, field: string): GrammarSpec {
  if (typeof schema !== 'boolean' && !isObject(schema)) throw badRequest(`${field} must be a JSON schema (an object)`, field);
  return { type: 'json_schema', schema: schema as Record<string, unknown> | boolean };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}
