// A structural check of msgpack bytes that came from a peer, run before
// msgpackr sees them. It accepts plain data only:
//   nil, booleans, numbers, strings, binary, arrays, maps with string or
//   integer keys, and the extension types in `allowed` (the codec's own
//   typed-array / ArrayBuffer / actor-ref records, dates, undefined).
// Everything else is refused: msgpackr's record definitions, structured-clone
// ids and pointers, Error / RegExp / Set / BigInt / bundled-string records,
// the reserved byte 0xc1. A container may not announce more items than bytes
// remain (so no decoder pre-allocates from a forged count), nesting is
// capped, and the document must end exactly at the last byte.
class PlainMsgpackError extends Error {
  override name = 'PlainMsgpackError';
}

const MAX_PLAIN_DEPTH = 64;

/** Throws PlainMsgpackError unless `bytes` is one plain msgpack document. */
export function checkPlainMsgpack(bytes: Uint8Array, allowed: ReadonlySet<number>): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  let pos = 0;
  // remaining[i]: items still due in the container at depth i; keyNext[i]: a map key comes next
  const remaining: number[] = [1];
  const isMap: boolean[] = [false];
  const keyNext: boolean[] = [false];

  const need = (n: number) => {
    if (pos + n > end) throw new PlainMsgpackError('truncated document');
  };
  const u8 = () => (need(1), view.getUint8(pos++));
  const u16 = () => { need(2); const v = view.getUint16(pos); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos); pos += 4; return v; };
  const skip = (n: number) => { need(n); pos += n; };
  const open = (items: number, map: boolean) => {
    if (items > end - pos) throw new PlainMsgpackError(`a container announces ${items} items with ${end - pos} bytes left`);
    if (remaining.length >= MAX_PLAIN_DEPTH) throw new PlainMsgpackError(`nesting deeper than ${MAX_PLAIN_DEPTH}`);
    if (items === 0) return;
    remaining.push(map ? items * 2 : items);
    isMap.push(map);
    keyNext.push(map);
  };
  const ext = (length: number) => {
    need(1);
    const type = view.getInt8(pos++);
    if (!allowed.has(type)) throw new PlainMsgpackError(`extension type ${type} is not plain data`);
    skip(length);
  };

  while (remaining.length > 0) {
    const depth = remaining.length - 1;
    if (remaining[depth] === 0) {
      remaining.pop(); isMap.pop(); keyNext.pop();
      continue;
    }
    remaining[depth]!--;
    const asKey = isMap[depth]! && keyNext[depth]!;
    if (isMap[depth]) keyNext[depth] = !keyNext[depth];
    const token = u8();
    const stringy = (token >= 0xa0 && token <= 0xbf) || token === 0xd9 || token === 0xda || token === 0xdb;
    const inty = token <= 0x7f || token >= 0xe0 || (token >= 0xcc && token <= 0xd3);
    if (asKey && !stringy && !inty) throw new PlainMsgpackError(`a map key of type 0x${token.toString(16)} (keys must be strings or integers)`);
    if (token <= 0x7f || token >= 0xe0 || token === 0xc0 || token === 0xc2 || token === 0xc3) continue;
    if (token <= 0x8f) { open(token & 0x0f, true); continue; }
    if (token <= 0x9f) { open(token & 0x0f, false); continue; }
    if (token <= 0xbf) { skip(token & 0x1f); continue; }
    switch (token) {
      case 0xc4: case 0xd9: skip(u8()); continue;
      case 0xc5: case 0xda: skip(u16()); continue;
      case 0xc6: case 0xdb: skip(u32()); continue;
      case 0xc7: ext(u8()); continue;
      case 0xc8: ext(u16()); continue;
      case 0xc9: ext(u32()); continue;
      case 0xca: skip(4); continue;
      case 0xcb: skip(8); continue;
      case 0xcc: case 0xd0: skip(1); continue;
      case 0xcd: case 0xd1: skip(2); continue;
      case 0xce: case 0xd2: skip(4); continue;
      case 0xcf: case 0xd3: skip(8); continue;
      case 0xd4: ext(1); continue;
      case 0xd5: ext(2); continue;
      case 0xd6: ext(4); continue;
      case 0xd7: ext(8); continue;
      case 0xd8: ext(16); continue;
      case 0xdc: open(u16(), false); continue;
      case 0xdd: open(u32(), false); continue;
      case 0xde: open(u16(), true); continue;
      case 0xdf: open(u32(), true); continue;
      default: throw new PlainMsgpackError(`reserved byte 0x${token.toString(16)}`);
    }
  }
  if (pos !== end) throw new PlainMsgpackError(`${end - pos} bytes after the document`);
}
