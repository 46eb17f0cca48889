// JSON numbers within a schema's bounds, as EBNF. xgrammar's own ranges for
// `number` let values past a bound through (maximum 100 admits 100.5) and for
// fractional bounds emit an unescaped "." that matches any character, so
// bounded numbers are built here instead, exactly in decimal:
//
//   x = N / 10^k, N an integer, k = 0..maxFraction fraction digits
//   lo <= x <= hi  <=>  ceil(lo * 10^k) <= N <= floor(hi * 10^k)   (exclusive bounds: one step in)
//
// For each k and each digit count L of |N|, the integers of that length in
// the range are fixed-length digit patterns ("1[5-9]", "[2-9][0-9]"); the
// decimal point goes before the last k digits. Every string the rule accepts
// is within the bounds (no exponent form, at most maxFraction fraction digits).
//
// The patterns are emitted as a trie of rules (each rule's alternatives start
// with distinct elements), not as one flat alternation: xgrammar 0.1.27's
// matcher accepts strings outside a flat alternation of sequences that share
// prefixes (from ("c" "d" "d" "." "b") | ("c" "d" "d" "d" "." "b") | ... it
// took "cddddddddd..."), and handles the trie form exactly.

import type { BuiltRule } from './schema-rules.js';

export interface NumberBounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** Digits of an integer part at most, where a side is unbounded (JSON integers past 2^53 lose precision anyway). */
const MAX_INTEGER_DIGITS = 16;
const DEFAULT_FRACTION_DIGITS = 6;

/** value = digits / 10^scale, exactly, from JavaScript's shortest decimal form of the number. */
interface Decimal {
  digits: bigint;
  scale: number;
}

function decimalOf(value: number): Decimal {
  const [mantissa, exponentText] = String(value).toLowerCase().split('e') as [string, string | undefined];
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  const negative = mantissa.startsWith('-');
  const [whole, fraction = ''] = (negative ? mantissa.slice(1) : mantissa).split('.') as [string, string | undefined];
  let digits = BigInt(whole + fraction);
  let scale = fraction.length - exponent;
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { digits: negative ? -digits : digits, scale };
}

/** floor or ceil of d * 10^k. */
function scaled(d: Decimal, k: number, round: 'floor' | 'ceil'): bigint {
  if (k >= d.scale) return d.digits * 10n ** BigInt(k - d.scale);
  const div = 10n ** BigInt(d.scale - k);
  const q = d.digits / div; // truncates toward zero
  const exact = q * div === d.digits;
  if (exact) return q;
  if (round === 'floor') return d.digits < 0n ? q - 1n : q;
  return d.digits < 0n ? q : q + 1n;
}

/** Keywords a bounded number's schema may carry besides its bounds for it to be built here (the rest only annotate). */
const NUMBER_KEYWORDS = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'title', 'description', 'default', 'examples', '$comment']);

/** The rule of a bounded `number` / `integer` subschema (finite bounds, no other constraint), else null. */
export function boundedNumberRule(schema: Record<string, unknown>, name: string): BuiltRule | null {
  if (schema['type'] !== 'number' && schema['type'] !== 'integer') return null;
  if (!Object.keys(schema).every((key) => NUMBER_KEYWORDS.has(key))) return null;
  const values = [schema['minimum'], schema['maximum'], schema['exclusiveMinimum'], schema['exclusiveMaximum']];
  if (!values.some((v) => v !== undefined) || !values.every((v) => v === undefined || (typeof v === 'number' && Number.isFinite(v)))) return null;
  return numberRangeEbnf(schema as NumberBounds, schema['type'] === 'integer', name);
}

/**
 * The JSON numbers within `bounds` (integers only when `integer`) as EBNF:
 * `rule` the expression, `definitions` the rules it refers to (named
 * `${name}_<i>`), or null when no number is within them.
 */
export function numberRangeEbnf(bounds: NumberBounds, integer: boolean, name = 'number_range'): BuiltRule | null {
  const lower = [bounds.minimum, bounds.exclusiveMinimum].filter((v): v is number => v !== undefined);
  const upper = [bounds.maximum, bounds.exclusiveMaximum].filter((v): v is number => v !== undefined);
  const decimals = [...lower, ...upper].map(decimalOf);
  const maxFraction = integer ? 0 : Math.max(DEFAULT_FRACTION_DIGITS, ...decimals.map((d) => d.scale));
  const patterns: string[][] = [];
  for (let k = 0; k <= maxFraction; k++) {
    // N's range for k fraction digits: the tightest of the bounds given
    let lo: bigint | null = null;
    let hi: bigint | null = null;
    if (bounds.minimum !== undefined) lo = max(lo, scaled(decimalOf(bounds.minimum), k, 'ceil'));
    if (bounds.exclusiveMinimum !== undefined) lo = max(lo, scaled(decimalOf(bounds.exclusiveMinimum), k, 'floor') + 1n);
    if (bounds.maximum !== undefined) hi = min(hi, scaled(decimalOf(bounds.maximum), k, 'floor'));
    if (bounds.exclusiveMaximum !== undefined) hi = min(hi, scaled(decimalOf(bounds.exclusiveMaximum), k, 'ceil') - 1n);
    // N >= 0, then N < 0 written as "-" and |N|
    const nonNegative = span(lo === null || lo < 0n ? 0n : lo, hi);
    if (nonNegative) patterns.push(...magnitudes(nonNegative[0], nonNegative[1], k));
    const negative = span(hi === null || hi > -1n ? 1n : -hi, lo === null ? null : -lo);
    if (negative) patterns.push(...magnitudes(negative[0], negative[1], k).map((p) => ['"-"', ...p]));
  }
  return patterns.length === 0 ? null : trieRules(patterns, name);
}

interface TrieNode {
  end: boolean;
  children: Map<string, TrieNode>;
}

/** The patterns (sequences of EBNF elements) as a trie of rules. */
function trieRules(patterns: string[][], name: string): BuiltRule {
  const root: TrieNode = { end: false, children: new Map() };
  for (const pattern of patterns) {
    let node = root;
    for (const element of pattern) {
      let next = node.children.get(element);
      if (!next) node.children.set(element, (next = { end: false, children: new Map() }));
      node = next;
    }
    node.end = true;
  }
  const definitions: string[] = [];
  let rules = 0;
  const expression = (node: TrieNode): string => {
    const alternatives: string[] = [];
    if (node.end) alternatives.push('""');
    for (const [element, child] of node.children) {
      if (child.children.size === 0) alternatives.push(`(${element})`);
      else {
        const ruleName = `${name}_${rules++}`;
        definitions.push(`${ruleName} ::= ${expression(child)}`);
        alternatives.push(`(${element} ${ruleName})`);
      }
    }
    return `(${alternatives.join(' | ')})`;
  };
  return { rule: expression(root), definitions };
}

function max(a: bigint | null, b: bigint): bigint {
  return a === null || b > a ? b : a;
}
function min(a: bigint | null, b: bigint): bigint {
  return a === null || b < a ? b : a;
}

/** [lo, hi] when not empty (hi null: unbounded). */
function span(lo: bigint, hi: bigint | null): [bigint, bigint | null] | null {
  return hi !== null && hi < lo ? null : [lo, hi];
}

/** The decimal texts of N / 10^k for N in [lo, hi] (N >= 0), as sequences of EBNF elements. */
function magnitudes(lo: bigint, hi: bigint | null, k: number): string[][] {
  const out: string[][] = [];
  const maxLength = hi === null ? MAX_INTEGER_DIGITS + k : Math.max(hi.toString().length, k + 1);
  for (let length = k + 1; length <= maxLength; length++) {
    // |N| written with `length` digits: zero-padded to k + 1 (integer part "0"), else no leading zero
    const first = length === k + 1 ? 0n : 10n ** BigInt(length - 1);
    const last = 10n ** BigInt(length) - 1n;
    const a = lo > first ? lo : first;
    const b = hi !== null && hi < last ? hi : last;
    if (a > b) continue;
    for (const pattern of digitPatterns(a.toString().padStart(length, '0'), b.toString().padStart(length, '0'))) {
      const parts = pattern.map((cls) => (cls.length === 1 ? `"${cls}"` : cls));
      if (k > 0) parts.splice(length - k, 0, '"."');
      out.push(parts);
    }
  }
  return out;
}

/** Fixed-length digit strings from a to b (same length, a <= b) as sequences of digit classes. */
function digitPatterns(a: string, b: string): string[][] {
  if (a.length === 0) return [[]];
  if (/^0*$/.test(a) && /^9*$/.test(b)) return [Array<string>(a.length).fill('[0-9]')];
  if (a[0] === b[0]) return digitPatterns(a.slice(1), b.slice(1)).map((p) => [a[0]!, ...p]);
  const rest = a.length - 1;
  const da = Number(a[0]), db = Number(b[0]);
  const out: string[][] = [];
  const lowAll = /^0*$/.test(a.slice(1));
  const highAll = /^9*$/.test(b.slice(1));
  const from = lowAll ? da : da + 1;
  const to = highAll ? db : db - 1;
  if (!lowAll) out.push(...digitPatterns(a.slice(1), '9'.repeat(rest)).map((p) => [a[0]!, ...p]));
  if (from <= to) out.push([from === to ? String(from) : `[${from}-${to}]`, ...Array<string>(rest).fill('[0-9]')]);
  if (!highAll) out.push(...digitPatterns('0'.repeat(rest), b.slice(1)).map((p) => [b[0]!, ...p]));
  return out;
}

