import { describe, expect, it } from 'vitest';
import { decodePoint, encodePoint, type EngValue } from '../../devices/codec.ts';
import type { ByteOrder, DataType, Point } from '../../devices/profile.ts';

/**
 * Byte fixtures in the style of mqtt-packet's test.js: each row gives the wire registers of one
 * value in one byte order, and yields a parse test (registers -> value), a generate test
 * (value -> registers) and a mirror test (generate(parse(x)) equals x).
 *
 * Expected registers are worked out by hand from the IEEE 754 / two's complement bytes
 * (checked with Python's struct module), never by calling the codec:
 *   int16   -12345      = CF C7
 *   uint16  4660        = 12 34
 *   int32   -123456789  = F8 A4 32 EB
 *   uint32  305419896   = 12 34 56 78
 *   float32 1.5         = 3F C0 00 00
 *   float32 -118.625    = C2 ED 40 00
 *   float32 fround(pi)  = 40 49 0F DB
 *   float64 1234.5678   = 40 93 4A 45 6D 5C FA AD
 *   float64 -2.5        = C0 04 00 00 00 00 00 00
 * Orders name the value's bytes A (most significant) .. D as they appear on the wire
 * (Modbus Application Protocol 4.2: each register is big-endian): ABCD as is, CDAB swaps the
 * words, BADC swaps the bytes of each word, DCBA both. For 64-bit values the word swap reverses
 * all four words. A 16-bit value has one word, so only the byte swap applies to it.
 */

function pt(p: Partial<Point> & { type: DataType }): Point {
  return {
    key: 'p', name: 'p', table: 'holding', address: 0, scale: 1, offset: 0, unit: '', writable: true, ...p,
  } as Point;
}

interface Fixture { type: DataType; value: EngValue; wire: Record<ByteOrder, number[]>; bit?: number; length?: number }

const FIXTURES: Fixture[] = [
  { type: 'int16', value: -12345, wire: { ABCD: [0xcfc7], CDAB: [0xcfc7], BADC: [0xc7cf], DCBA: [0xc7cf] } },
  { type: 'int16', value: 32767, wire: { ABCD: [0x7fff], CDAB: [0x7fff], BADC: [0xff7f], DCBA: [0xff7f] } },
  { type: 'uint16', value: 4660, wire: { ABCD: [0x1234], CDAB: [0x1234], BADC: [0x3412], DCBA: [0x3412] } },
  { type: 'uint16', value: 65535, wire: { ABCD: [0xffff], CDAB: [0xffff], BADC: [0xffff], DCBA: [0xffff] } },
  {
    type: 'int32', value: -123456789,
    wire: { ABCD: [0xf8a4, 0x32eb], CDAB: [0x32eb, 0xf8a4], BADC: [0xa4f8, 0xeb32], DCBA: [0xeb32, 0xa4f8] },
  },
  {
    type: 'uint32', value: 305419896,
    wire: { ABCD: [0x1234, 0x5678], CDAB: [0x5678, 0x1234], BADC: [0x3412, 0x7856], DCBA: [0x7856, 0x3412] },
  },
  {
    type: 'uint32', value: 4294967295,
    wire: { ABCD: [0xffff, 0xffff], CDAB: [0xffff, 0xffff], BADC: [0xffff, 0xffff], DCBA: [0xffff, 0xffff] },
  },
  {
    type: 'float32', value: 1.5,
    wire: { ABCD: [0x3fc0, 0x0000], CDAB: [0x0000, 0x3fc0], BADC: [0xc03f, 0x0000], DCBA: [0x0000, 0xc03f] },
  },
  {
    type: 'float32', value: -118.625,
    wire: { ABCD: [0xc2ed, 0x4000], CDAB: [0x4000, 0xc2ed], BADC: [0xedc2, 0x0040], DCBA: [0x0040, 0xedc2] },
  },
  {
    // The float32 nearest pi is 3.1415927410125732; the codec tidies it to 12 significant digits.
    type: 'float32', value: 3.14159274101,
    wire: { ABCD: [0x4049, 0x0fdb], CDAB: [0x0fdb, 0x4049], BADC: [0x4940, 0xdb0f], DCBA: [0xdb0f, 0x4940] },
  },
  {
    type: 'float64', value: 1234.5678,
    wire: {
      ABCD: [0x4093, 0x4a45, 0x6d5c, 0xfaad],
      CDAB: [0xfaad, 0x6d5c, 0x4a45, 0x4093],
      BADC: [0x9340, 0x454a, 0x5c6d, 0xadfa],
      DCBA: [0xadfa, 0x5c6d, 0x454a, 0x9340],
    },
  },
  {
    type: 'float64', value: -2.5,
    wire: { ABCD: [0xc004, 0, 0, 0], CDAB: [0, 0, 0, 0xc004], BADC: [0x04c0, 0, 0, 0], DCBA: [0, 0, 0, 0x04c0] },
  },
  // Bit 0 of the register: its low byte, which a byte swap puts on the high byte of the wire.
  { type: 'bits', bit: 0, value: true, wire: { ABCD: [0x0001], CDAB: [0x0001], BADC: [0x0100], DCBA: [0x0100] } },
  { type: 'bits', bit: 15, value: true, wire: { ABCD: [0x8000], CDAB: [0x8000], BADC: [0x0080], DCBA: [0x0080] } },
  { type: 'bits', bit: 9, value: false, wire: { ABCD: [0x0000], CDAB: [0x0000], BADC: [0x0000], DCBA: [0x0000] } },
  // Two ASCII characters per register, first character in the high byte; padded with NUL.
  // Strings are never word-swapped; byte-swapping orders swap the characters of each register.
  {
    type: 'string', length: 3, value: 'CS-01',
    wire: { ABCD: [0x4353, 0x2d30, 0x3100], CDAB: [0x4353, 0x2d30, 0x3100], BADC: [0x5343, 0x302d, 0x0031], DCBA: [0x5343, 0x302d, 0x0031] },
  },
];

const ORDERS: ByteOrder[] = ['ABCD', 'DCBA', 'BADC', 'CDAB'];
const hex = (regs: number[]) => regs.map((r) => r.toString(16).padStart(4, '0')).join(' ');

describe('codec byte fixtures', () => {
  for (const f of FIXTURES) {
    for (const order of ORDERS) {
      const point = pt({ type: f.type, bit: f.bit, length: f.length });
      const wire = f.wire[order];
      const name = `${f.type}${f.bit !== undefined ? `.${f.bit}` : ''} ${JSON.stringify(f.value)} in ${order} [${hex(wire)}]`;

      it(`parses ${name}`, () => {
        expect(decodePoint(point, wire, order)).toBe(f.value);
      });

      it(`generates ${name}`, () => {
        expect(encodePoint(point, f.value, order)).toEqual(wire);
      });

      it(`mirrors ${name}`, () => {
        expect(encodePoint(point, decodePoint(point, wire, order), order, wire[0])).toEqual(wire);
      });
    }
  }

  it('lets a point override the profile byte order', () => {
    const point = pt({ type: 'uint32', order: 'CDAB' });
    expect(decodePoint(point, [0x5678, 0x1234], 'ABCD')).toBe(305419896);
    expect(encodePoint(point, 305419896, 'ABCD')).toEqual([0x5678, 0x1234]);
  });

  it('reads coils and discrete inputs as booleans and writes coils as booleans', () => {
    const coil = pt({ type: 'bits', table: 'coil' });
    expect(decodePoint(coil, [true])).toBe(true);
    expect(decodePoint(pt({ type: 'bits', table: 'discrete' }), [false])).toBe(false);
    expect(encodePoint(coil, 'on')).toBe(true);
    expect(encodePoint(coil, 0)).toBe(false);
  });
});

describe('codec scale and offset', () => {
  it('scales a raw value to engineering units: 1234 × 0.01 = 12.34', () => {
    const p = pt({ type: 'uint16', scale: 0.01 });
    expect(decodePoint(p, [0x04d2])).toBe(12.34);
    expect(encodePoint(p, 12.34)).toEqual([0x04d2]);
  });

  it('applies an offset after the scale: 250 × 0.1 − 40 = −15', () => {
    const p = pt({ type: 'int16', scale: 0.1, offset: -40 });
    expect(decodePoint(p, [0x00fa])).toBe(-15);
    expect(encodePoint(p, -15)).toEqual([0x00fa]);
  });

  it('scales a word-swapped int32: raw -1 × 0.001 = -0.001', () => {
    const p = pt({ type: 'int32', scale: 0.001 });
    expect(decodePoint(p, [0xffff, 0xffff], 'CDAB')).toBe(-0.001);
    expect(encodePoint(p, 0.92, 'CDAB')).toEqual([0x0398, 0x0000]);
  });

  it('rounds an engineering value to the nearest raw step', () => {
    expect(encodePoint(pt({ type: 'uint16', scale: 0.01 }), 0.056)).toEqual([6]);
  });
});

describe('codec refusals', () => {
  const refuses = (p: Point, v: EngValue, code: string) => {
    expect(() => encodePoint(p, v)).toThrow(expect.objectContaining({ code }));
  };

  it('refuses an int16 beyond 32767 rather than wrapping to a negative', () => {
    refuses(pt({ type: 'int16' }), 32768, 'CS_DEV_CODEC_RANGE');
    refuses(pt({ type: 'int16' }), -32769, 'CS_DEV_CODEC_RANGE');
  });

  it('refuses a negative uint16 and a uint16 beyond 65535', () => {
    refuses(pt({ type: 'uint16' }), -1, 'CS_DEV_CODEC_RANGE');
    refuses(pt({ type: 'uint16' }), 65536, 'CS_DEV_CODEC_RANGE');
  });

  it('refuses 32-bit integers outside their range', () => {
    refuses(pt({ type: 'int32' }), 2 ** 31, 'CS_DEV_CODEC_RANGE');
    refuses(pt({ type: 'uint32' }), 2 ** 32, 'CS_DEV_CODEC_RANGE');
    refuses(pt({ type: 'uint32' }), -1, 'CS_DEV_CODEC_RANGE');
  });

  it('refuses an engineering value whose scaled raw value does not fit: 700 m at 0.01 m per step', () => {
    refuses(pt({ type: 'uint16', scale: 0.01 }), 700, 'CS_DEV_CODEC_RANGE');
  });

  it('refuses text that is not a number for a numeric point', () => {
    refuses(pt({ type: 'float32' }), 'high', 'CS_DEV_CODEC_TYPE');
  });

  it('refuses a flag value that is neither true nor false', () => {
    refuses(pt({ type: 'bits', bit: 0 }), 'maybe', 'CS_DEV_CODEC_TYPE');
  });

  it('refuses a string longer than its registers hold', () => {
    refuses(pt({ type: 'string', length: 2 }), 'ABCDE', 'CS_DEV_CODEC_RANGE');
  });

  it('refuses to decode the wrong number of registers', () => {
    expect(() => decodePoint(pt({ type: 'float32' }), [0x3fc0])).toThrow(expect.objectContaining({ code: 'CS_DEV_CODEC_LENGTH' }));
  });
});

describe('codec bits inside a register', () => {
  it('sets one bit and keeps the other fifteen', () => {
    expect(encodePoint(pt({ type: 'bits', bit: 3 }), true, 'ABCD', 0xa5f0)).toEqual([0xa5f8]);
  });

  it('clears one bit and keeps the other fifteen', () => {
    expect(encodePoint(pt({ type: 'bits', bit: 4 }), false, 'ABCD', 0xa5f0)).toEqual([0xa5e0]);
  });

  it('keeps the other bits of a byte-swapped register too', () => {
    // Register word 0xA5F0 arrives as F0 A5; setting bit 3 gives A5F8, sent as F8 A5.
    expect(encodePoint(pt({ type: 'bits', bit: 3 }), true, 'BADC', 0xf0a5)).toEqual([0xf8a5]);
  });

  it('reads one bit regardless of its neighbours', () => {
    expect(decodePoint(pt({ type: 'bits', bit: 3 }), [0xfff7])).toBe(false);
    expect(decodePoint(pt({ type: 'bits', bit: 3 }), [0x0008])).toBe(true);
  });
});
