// GPT-2's byte-level alphabet, as Llama 3.x's tokenizer.json uses it: every
// byte 0..255 is written as one printable character, so a BPE token string
// like "ĠHello" stands for fixed bytes (" Hello"). Printable Latin-1 bytes are
// their own character; the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD)
// are shifted to U+0100.. in byte order. ("Ġ" is U+0120 = byte 0x20, space.)

/** char code -> byte, for the 256 characters of the alphabet; -1 elsewhere. */
const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x144).fill(-1);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[printable ? b : 0x100 + shifted++] = b;
  }
  return table;
})();

/** Writes the bytes a byte-level token string stands for at `out[at..]`; false if it has a character outside the alphabet. */
export function writeByteLevel(token: string, out: Uint8Array, at: number): boolean {
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const byte = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code]! : -1;
    if (byte < 0) return false;
    out[at + i] = byte;
  }
  return true;
}
