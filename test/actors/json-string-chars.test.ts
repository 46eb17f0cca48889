// The EBNF rewrite that keeps xgrammar's JSON strings to what JSON allows
// unescaped: negated classes exclude control characters, quotes and
// backslashes; positive classes holding a control character lose them;
// quoted literals and other classes are left alone.
import test from 'ava';
import { jsonStringSafeEbnf } from '../../actors/grammar/json-string-chars.js';

test('negated classes also exclude U+0000-U+001F, quote and backslash', (t) => {
  t.is(jsonStringSafeEbnf('s ::= ("\\"" [^\\"\\\\\\r\\n] "\\"")'), 's ::= ("\\"" [^\\0-\\x1f\\"\\\\\\"\\\\\\r\\n] "\\"")');
  t.is(jsonStringSafeEbnf('p ::= ([^a])'), 'p ::= ([^\\0-\\x1f\\"\\\\a])');
});

test('a positive class holding a control character keeps the rest of its set, without quote and backslash', (t) => {
  // `.` of a pattern: everything
  t.is(jsonStringSafeEbnf('s ::= ([\\0-\\U0010ffff]*)'), 's ::= ([\\u0020-\\u0021\\u0023-\\u005b\\u005d-\\U0010ffff]*)');
  // `\s` of a pattern: only the space and no-break space remain
  t.is(jsonStringSafeEbnf('s ::= ([\\f\\n\\r\\t\\v \\xa0])'), 's ::= ([\\u0020\\u00a0])');
});

test('classes without control characters and quoted literals are unchanged', (t) => {
  const grammar = [
    'basic_escape ::= (([\\"\\\\/bfnrt]) | ("u" [A-Fa-f0-9] [A-Fa-f0-9] [A-Fa-f0-9] [A-Fa-f0-9]))',
    'n ::= ([+\\-] [0-9]* [eE])',
    'root ::= (("{" "\\"[^x\\"" ": " n "}") | ("\\"a[\\\\0-\\\\x1f]\\""))',
  ].join('\n');
  t.is(jsonStringSafeEbnf(grammar), grammar);
});
