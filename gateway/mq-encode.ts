/**
 * The encoding of a packet routed between brokers (gateway/cluster.ts): the bytes msgpack-lite's
 * `encode` gives (mqemitter-redis decodes them with msgpack-lite on the other brokers), written by a
 * plain loop into one scratch buffer. msgpack-lite's general encoder was 13 % of the broker's CPU
 * under the ingest bench's load: every QoS 1 PUBLISH is routed, subscribers or not.
 *
 * Covers null, undefined, booleans, numbers, strings, Buffers, arrays and plain objects (Aedes'
 * packets, MQTT 5 properties); anything else (a Date, a typed array) returns undefined and the
 * caller falls back to msgpack-lite. Byte for byte msgpack-lite's output, its quirks included (a
 * Buffer of 255 bytes takes bin 16; a number outside int32 is a float 64): test/gateway/mq-encode.test.ts.
 */

let scratch = Buffer.allocUnsafe(64 * 1024);
let at = 0;

function room(n: number): void {
  if (at + n <= scratch.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n));
  scratch.copy(bigger, 0, 0, at);
  scratch = bigger;
}

/** A type byte and a big-endian unsigned length of `bytes` bytes. */
function head(type: number, bytes: 0 | 1 | 2 | 4, n: number): void {
  scratch[at++] = type;
  if (bytes === 1) scratch[at++] = n;
  else if (bytes === 2) { scratch.writeUInt16BE(n, at); at += 2; } else if (bytes === 4) { scratch.writeUInt32BE(n, at); at += 4; }
}

function number(v: number): void {
  const i = v | 0;
  if (v !== i) {
    scratch[at++] = 0xcb;
    scratch.writeDoubleBE(v, at);
    at += 8;
  } else if (i >= -0x20 && i <= 0x7f) {
    scratch[at++] = i & 0xff;
  } else if (i >= 0) {
    if (i <= 0xff) head(0xcc, 1, i);
    else if (i <= 0xffff) head(0xcd, 2, i);
    else head(0xce, 4, i);
  } else if (i >= -0x80) {
    scratch[at++] = 0xd0;
    scratch.writeInt8(i, at++);
  } else if (i >= -0x8000) {
    scratch[at++] = 0xd1;
    scratch.writeInt16BE(i, at);
    at += 2;
  } else {
    scratch[at++] = 0xd2;
    scratch.writeInt32BE(i, at);
    at += 4;
  }
}

function string(s: string): void {
  const len = s.length;
  if (len <= 0xff) {
    // Short ASCII (keys, topics, ids): one byte a character, so the header is known first.
    const h = len < 32 ? 1 : 2;
    room(h + len);
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      scratch[at + h + i] = c;
    }
    if (i === len) {
      if (h === 1) scratch[at] = 0xa0 + len;
      else { scratch[at] = 0xd9; scratch[at + 1] = len; }
      at += h + len;
      return;
    }
  }
  room(5 + len * 3);
  // Written after the longest header, then moved up to the header its byte length needs.
  const n = scratch.write(s, at + 5, 'utf8');
  const h = n < 32 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
  if (h !== 5) scratch.copy(scratch, at + h, at + 5, at + 5 + n);
  if (h === 1) scratch[at++] = 0xa0 + n;
  else if (h === 2) head(0xd9, 1, n);
  else if (h === 3) head(0xda, 2, n);
  else head(0xdb, 4, n);
  at += n;
}

function value(v: unknown): boolean {
  room(9);
  switch (typeof v) {
    case 'undefined': case 'function': case 'symbol':
      scratch[at++] = 0xc0;
      return true;
    case 'boolean':
      scratch[at++] = v ? 0xc3 : 0xc2;
      return true;
    case 'number':
      number(v);
      return true;
    case 'string':
      string(v);
      return true;
    case 'object': {
      if (v === null) {
        scratch[at++] = 0xc0;
        return true;
      }
      if (Buffer.isBuffer(v)) {
        const n = v.length;
        if (n < 0xff) head(0xc4, 1, n);
        else if (n <= 0xffff) head(0xc5, 2, n);
        else head(0xc6, 4, n);
        room(n);
        v.copy(scratch, at);
        at += n;
        return true;
      }
      if (Array.isArray(v)) {
        const n = v.length;
        if (n < 16) scratch[at++] = 0x90 + n;
        else if (n <= 0xffff) head(0xdc, 2, n);
        else head(0xdd, 4, n);
        for (const x of v) if (!value(x)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = Object.keys(v);
      const n = keys.length;
      if (n < 16) scratch[at++] = 0x80 + n;
      else if (n <= 0xffff) head(0xde, 2, n);
      else head(0xdf, 4, n);
      for (const k of keys) {
        string(k);
        if (!value((v as Record<string, unknown>)[k])) return false;
      }
      return true;
    }
    default:
      return false; // bigint
  }
}

/** `{ id, msg }` as msgpack-lite encodes it, or undefined for a value it does not cover. */
export function encodeRouted(id: string, msg: object): Buffer | undefined {
  at = 0;
  room(1);
  scratch[at++] = 0x82;
  string('id');
  string(id);
  string('msg');
  // Aedes' packets are instances of its Packet class: encoded as msgpack-lite does, by own keys.
  room(3);
  const keys = Object.keys(msg);
  const n = keys.length;
  if (n < 16) scratch[at++] = 0x80 + n;
  else head(0xde, 2, n);
  for (const k of keys) {
    string(k);
    if (!value((msg as Record<string, unknown>)[k])) return undefined;
  }
  return Buffer.from(scratch.subarray(0, at));
}
