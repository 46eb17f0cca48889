// The demo model's raw text, read from Debian packages (public domain or
// permissive licences, recorded in the model card):
//
//   bible-kjv-text   /usr/lib/bible.data via the `bible` program  King James Bible
//   dict-wn          /usr/share/dictd/wn.*                          WordNet 3.0 glosses
//   dict-devil       /usr/share/dictd/devil.*                       The Devil's Dictionary
//   dict-jargon      /usr/share/dictd/jargon.*                      The Jargon File
//
// A dictd database is a gzip (dictzip) body plus an index of
// "headword \t base64 offset \t base64 length" lines into the uncompressed body.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface Verse {
  book: string;
  chapter: number;
  verse: number;
  text: string;
}

export interface Definition {
  source: 'wn' | 'devil' | 'jargon';
  word: string;
  /** One sentence-like definition, whitespace collapsed. */
  gloss: string;
  /** A usage example (WordNet's quoted examples), when there is one. */
  example?: string;
}

/** Every verse of the KJV in canonical order. */
export function readBible(): Verse[] {
  const text = execFileSync('bible', ['-l', '100000', 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const verses: Verse[] = [];
  let book = '';
  let chapter = 0;
  for (const line of text.split('\n')) {
    const heading = /^(\S.*) (\d+)$/.exec(line);
    if (heading) {
      book = heading[1]!;
      chapter = Number(heading[2]);
      continue;
    }
    const verse = /^\s+(\d+) (.+)$/.exec(line);
    if (verse) verses.push({ book, chapter, verse: Number(verse[1]), text: verse[2]!.trim() });
  }
  return verses;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function b64(s: string): number {
  let n = 0;
  for (const c of s) n = n * 64 + B64.indexOf(c);
  return n;
}

/** The (headword, body) entries of a dictd database, in index order, without the 00-database-* metadata. */
function readDictd(name: string): { word: string; body: string }[] {
  const body = gunzipSync(readFileSync(`/usr/share/dictd/${name}.dict.dz`));
  const entries: { word: string; body: string }[] = [];
  for (const line of readFileSync(`/usr/share/dictd/${name}.index`, 'utf8').split('\n')) {
    const [word, off, len] = line.split('\t');
    if (!word || !off || !len || word.startsWith('00-database') || word.startsWith('00database')) continue;
    entries.push({ word, body: body.subarray(b64(off), b64(off) + b64(len)).toString('utf8') });
  }
  return entries;
}

const collapse = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** WordNet: the first sense's gloss and example of each plain lower-case word. */
export function readWordNet(): Definition[] {
  const out: Definition[] = [];
  for (const { word, body } of readDictd('wn')) {
    if (!/^[a-z]+$/.test(word) || word.length < 3) continue;
    const text = collapse(body.split('\n').slice(1).join(' ').replace(/\[syn:[^\]]*\]|\[ant:[^\]]*\]/g, ''));
    const sense = /^(?:n|v|adj|adv)\s+(?:1:\s*)?(.*?)(?:\s+2:|$)/.exec(text);
    if (!sense) continue;
    const [glossPart, ...examples] = sense[1]!.split(/;\s*"/);
    const gloss = collapse(glossPart!.replace(/[;:,\s]+$/, ''));
    if (gloss.length < 8 || gloss.length > 160 || /[{}]/.test(gloss)) continue;
    const example = examples.length > 0 ? collapse(examples[0]!.replace(/"[;\s]*$/, '').replace(/"/g, '')) : undefined;
    out.push({ source: 'wn', word, gloss, ...(example && example.length < 160 ? { example } : {}) });
  }
  return out;
}

/** The Devil's Dictionary and the Jargon File: each entry's first paragraph. */
export function readProseDictionary(name: 'devil' | 'jargon'): Definition[] {
  const out: Definition[] = [];
  for (const { word, body } of readDictd(name)) {
    const lines = body.split('\n').slice(1);
    const para: string[] = [];
    for (const l of lines) {
      if (l.trim() === '') { if (para.length > 0) break; else continue; }
      para.push(l);
    }
    let gloss = collapse(para.join(' '));
    if (name === 'jargon') gloss = gloss.replace(/^[a-z.,\s]*\b(n|adj|v|vt|vi|interj|pref)\.\s*/, '').replace(/^\[[^\]]*\]\s*/, '');
    if (gloss.length < 8 || /^[A-Z0-9-]+,?\s/.test(word) === false && word.length > 40) continue;
    if (gloss.length > 400) gloss = gloss.slice(0, gloss.lastIndexOf('.', 400) + 1) || gloss.slice(0, 400);
    if (gloss.length < 8) continue;
    out.push({ source: name, word: word.toLowerCase(), gloss });
  }
  return out;
}
