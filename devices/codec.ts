import { CsError } from '../lib/errors.ts';
import { DeviceErrors } from './errors.ts';
import { registerCount, type ByteOrder, type DataType, type Point } from './profile.ts';

/**
 * One two-way codec per data type (after mqtt-packet): the same table decodes reads and
 * encodes writes, so a byte order applied on read is applied on write too
 * (the fault of thingsboard-gateway #342 and #1275).
 *
 * Orders name the bytes of the value, A the most significant, as laid out on the wire
 * (Modbus Application Protocol 4.2: registers are big-endian). ABCD is big-endian,
 * CDAB swaps words, BADC swaps the bytes within each word, DCBA is fully little-endian.
 * For 64-bit values the same two operations apply to all four words.
 */

const WIDTH: Record<Exclude<DataType, 'bits' | 'string'>, number> = {
  int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8,
};

const swapsBytes = (o: ByteOrder) => o === 'BADC' || o === 'DCBA';
const swapsWords = (o: ByteOrder) => o === 'CDAB' || o === 'DCBA';

/** Wire registers to the value's big-endian bytes. */
function toBigEndian(regs: readonly number[], order: ByteOrder): Buffer {
  const words = swapsWords(order) ? [...regs].reverse() : [...regs];
  const buf = Buffer.alloc(words.length * 2);
  words.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 0 || w > 0xffff) {
      throw new CsError(DeviceErrors.CODEC_RANGE, `register ${i} holds ${w}, not a 16-bit value`);
    }
    buf.writeUInt16BE(w, i * 2);
  });
  if (swapsBytes(order)) buf.swap16();
  return buf;
}

/** The value's big-endian bytes to wire registers. */
function fromBigEndian(bytes: Buffer, order: ByteOrder): number[] {
  const buf = Buffer.from(bytes);
  if (swapsBytes(order)) buf.swap16();
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  return swapsWords(order) ? words.reverse() : words;
}

/** Decodes the registers of one numeric value to its raw (unscaled) number. */
export function decodeNumber(type: Exclude<DataType, 'bits' | 'string'>, regs: readonly number[], order: ByteOrder = 'ABCD'): number {
  const width = WIDTH[type];
  if (regs.length !== width / 2) {
    throw new CsError(DeviceErrors.CODEC_LENGTH, `${type} needs ${width / 2} registers, got ${regs.length}`);
  }
  const b = toBigEndian(regs, order);
  switch (type) {
    case 'int16': return b.readInt16BE(0);
    case 'uint16': return b.readUInt16BE(0);
    case 'int32': return b.readInt32BE(0);
    case 'uint32': return b.readUInt32BE(0);
    case 'float32': return b.readFloatBE(0);
    case 'float64': return b.readDoubleBE(0);
  }
}

const LIMITS: Record<'int16' | 'uint16' | 'int32' | 'uint32', [number, number]> = {
  int16: [-0x8000, 0x7fff], uint16: [0, 0xffff], int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff],
};

/** Encodes a raw number to the registers of one value; integers out of range are refused, not wrapped. */
export function encodeNumber(type: Exclude<DataType, 'bits' | 'string'>, raw: number, order: ByteOrder = 'ABCD'): number[] {
  if (typeof raw !== 'number' || Number.isNaN(raw)) throw new CsError(DeviceErrors.CODEC_TYPE, `${type} needs a number, got ${JSON.stringify(raw)}`);
  const b = Buffer.alloc(WIDTH[type]);
  if (type === 'float32') b.writeFloatBE(raw, 0);
  else if (type === 'float64') b.writeDoubleBE(raw, 0);
  else {
    const v = Math.round(raw);
    const [lo, hi] = LIMITS[type];
    if (v < lo || v > hi) throw new CsError(DeviceErrors.CODEC_RANGE, `${raw} does not fit ${type} (${lo}..${hi})`);
    if (type === 'int16') b.writeInt16BE(v, 0);
    else if (type === 'uint16') b.writeUInt16BE(v, 0);
    else if (type === 'int32') b.writeInt32BE(v, 0);
    else b.writeUInt32BE(v, 0);
  }
  return fromBigEndian(b, order);
}

/** ASCII, two characters per register, padding NULs and spaces trimmed. */
export function decodeString(regs: readonly number[], order: ByteOrder = 'ABCD'): string {
  const b = toBigEndian(regs, swapsBytes(order) ? 'BADC' : 'ABCD');
  return b.toString('latin1').replace(/[\0 ]+$/, '');
}

export function encodeString(text: string, length: number, order: ByteOrder = 'ABCD'): number[] {
  if (typeof text !== 'string') throw new CsError(DeviceErrors.CODEC_TYPE, `string needs text, got ${JSON.stringify(text)}`);
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length > length * 2) throw new CsError(DeviceErrors.CODEC_RANGE, `"${text}" is longer than ${length * 2} characters`);
  const b = Buffer.alloc(length * 2);
  bytes.copy(b);
  return fromBigEndian(b, swapsBytes(order) ? 'BADC' : 'ABCD');
}

/** A value in engineering units: numbers for measurements, booleans for flags, text for strings. */
export type EngValue = number | boolean | string;

/** Rounds away float noise from scaling (0.1 × 3 = 0.30000000000000004). */
function tidy(v: number): number {
  return Number.isInteger(v) ? v : Number(v.toPrecision(12));
}

/**
 * Decodes one point from its registers (for coils and discrete inputs: one boolean).
 * `order` is the profile's default, overridden by the point's own.
 */
export function decodePoint(point: Point, data: readonly number[] | readonly boolean[], profileOrder: ByteOrder = 'ABCD'): EngValue {
  const order = point.order ?? profileOrder;
  if (point.table === 'coil' || point.table === 'discrete') return Boolean(data[0]);
  const regs = data as readonly number[];
  if (regs.length !== registerCount(point)) {
    throw new CsError(DeviceErrors.CODEC_LENGTH, `point ${point.key} needs ${registerCount(point)} registers, got ${regs.length}`);
  }
  if (point.type === 'bits') {
    const word = swapsBytes(order) ? ((regs[0] & 0xff) << 8) | (regs[0] >> 8) : regs[0];
    return ((word >> (point.bit ?? 0)) & 1) === 1;
  }
  if (point.type === 'string') return decodeString(regs, order);
  return tidy(decodeNumber(point.type, regs, order) * point.scale + point.offset);
}

/**
 * Encodes an engineering value of one point to what a write carries: registers (FC6/16),
 * or a boolean for a coil (FC5/15). For a bit inside a register, `current` is the register's
 * present content; the other bits are kept.
 */
export function encodePoint(point: Point, value: EngValue, profileOrder: ByteOrder = 'ABCD', current = 0): number[] | boolean {
  const order = point.order ?? profileOrder;
  if (point.table === 'coil' || point.table === 'discrete') return toBool(point, value);
  if (point.type === 'bits') {
    const bit = 1 << (point.bit ?? 0);
    const word = swapsBytes(order) ? ((current & 0xff) << 8) | (current >> 8) : current;
    const next = toBool(point, value) ? word | bit : word & ~bit & 0xffff;
    return [swapsBytes(order) ? ((next & 0xff) << 8) | (next >> 8) : next];
  }
  if (point.type === 'string') return encodeString(String(value), point.length ?? 1, order);
  const eng = typeof value === 'boolean' ? Number(value) : typeof value === 'string' ? Number(value) : value;
  if (Number.isNaN(eng)) throw new CsError(DeviceErrors.CODEC_TYPE, `point ${point.key} needs a number, got ${JSON.stringify(value)}`);
  const raw = (eng - point.offset) / point.scale;
  return encodeNumber(point.type, raw, order);
}

function toBool(point: Point, value: EngValue): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === '1' || value === 'true' || value === 'on') return true;
  if (value === 0 || value === '0' || value === 'false' || value === 'off') return false;
  throw new CsError(DeviceErrors.CODEC_TYPE, `point ${point.key} is a flag: use true/false or 1/0, got ${JSON.stringify(value)}`);
}
