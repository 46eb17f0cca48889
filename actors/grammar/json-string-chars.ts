// A JSON string holds no raw control character (U+0000-U+001F), quote or
// backslash: those are written as escapes. xgrammar's JSON-schema converter
// keeps that rule for plain strings, but the character classes it emits for
// length-bounded strings ([^"\\\r\n]) and for `pattern`s (`.` as
// [\0-\U0010ffff], `\s` as [\f\n\r\t\v \xa0], [^a] as is) let raw control
// characters, and for patterns quotes, into the string, which no JSON parser
// accepts. This rewrites the EBNF it prints, outside quoted literals:
//
//   [^...]                      -> [^\0-\x1f\"\\...]     (negated: exclude them too)
//   [...] holding a control
//   character (U+0000-U+001F)   -> the same set minus U+0000-U+001F, " and \
//   any other class             -> unchanged (digits, [eE], basic_escape's [\"\\/bfnrt])
//
// A positive class holding a control character only ever stands for string
// content or the whitespace before a delimiter ([ \n\t] in a lookahead), and
// the compact JSON generated here has no whitespace there, so no valid output
// is lost.

/** Code point ranges [lo, hi], inclusive. */
type Ranges = [number, number][];

const REMOVED: Ranges = [[0x00, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];
const SIMPLE_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b, b: 0x08, a: 0x07, e: 0x1b, '0': 0 };

/** The grammar text with every character class made unable to put a raw control character, quote or backslash into a string. */
export function jsonStringSafeEbnf(ebnf: string): string {
  let out = '';
  let i = 0;
  while (i < ebnf.length) {
    const c = ebnf[i]!;
    if (c === '"') {
      const end = literalEnd(ebnf, i);
      out += ebnf.slice(i, end);
      i = end;
    } else if (c === '[') {
      const end = classEnd(ebnf, i);
      out += safeClass(ebnf.slice(i, end));
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function literalEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  return s.length;
}

function classEnd(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === ']') return i + 1;
  }
  return s.length;
}

/** One code point a JSON string holds unescaped: no control character, quote or backslash. */
export const JSON_UNESCAPED_CHAR = safeClass('[^]');

function safeClass(cls: string): string {
  if (cls.startsWith('[^')) return `[^\\0-\\x1f\\"\\\\${cls.slice(2)}`;
  const ranges = classRanges(cls.slice(1, -1));
  if (ranges === null || !ranges.some(([lo]) => lo <= 0x1f)) return cls;
  const kept = subtract(ranges, REMOVED);
  return `[${kept.map(([lo, hi]) => (lo === hi ? escape(lo) : `${escape(lo)}-${escape(hi)}`)).join('')}]`;
}

/** The ranges of a class body as xgrammar prints it (a literal "-" escaped), or null when it holds something else. */
function classRanges(body: string): Ranges | null {
  const items: (number | '-')[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === '-') {
      items.push('-');
      i++;
    } else if (body[i] === '\\') {
      const kind = body[i + 1];
      if (kind === undefined) return null;
      const width = kind === 'x' ? 2 : kind === 'u' ? 4 : kind === 'U' ? 8 : 0;
      if (width > 0) {
        const hex = body.slice(i + 2, i + 2 + width);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) return null;
        items.push(parseInt(hex, 16));
        i += 2 + width;
      } else {
        items.push(SIMPLE_ESCAPES[kind] ?? kind.codePointAt(0)!);
        i += 2;
      }
    } else {
      const cp = body.codePointAt(i)!;
      items.push(cp);
      i += cp > 0xffff ? 2 : 1;
    }
  }
  const ranges: Ranges = [];
  for (let k = 0; k < items.length; k++) {
    const lo = items[k]!;
    if (lo === '-') return null;
    if (items[k + 1] === '-') {
      const hi = items[k + 2];
      if (typeof hi !== 'number' || hi < lo) return null;
      ranges.push([lo, hi]);
      k += 2;
    } else ranges.push([lo, lo]);
  }
  return ranges;
}

function subtract(ranges: Ranges, removed: Ranges): Ranges {
  let out = ranges;
  for (const [rlo, rhi] of removed) {
    const next: Ranges = [];
    for (const [lo, hi] of out) {
      if (hi < rlo || lo > rhi) next.push([lo, hi]);
      else {
        if (lo < rlo) next.push([lo, rlo - 1]);
        if (hi > rhi) next.push([rhi + 1, hi]);
      }
    }
    out = next;
  }
  return out;
}

function escape(cp: number): string {
  return cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
}
