import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeRouted } from '../../gateway/mq-encode.ts';

// mqemitter-redis' own msgpack-lite, which decodes what the other brokers receive.
const msgpack = createRequire(createRequire(import.meta.url).resolve('mqemitter-redis'))('msgpack-lite') as {
  encode(v: unknown): Buffer; decode(b: Buffer): unknown;
};

class Packet { // shaped like aedes-packet's
  cmd = 'publish'; brokerId = '4f2c8a3e-1b7d-4c55-9e0a-6d3f2b1a9c77'; brokerCounter: number; topic: string; payload: Buffer;
  qos = 1; retain = false; dup = false; messageId: number | undefined = undefined; clientId?: string;
  constructor(topic: string, payload: Buffer, counter: number) { this.topic = topic; this.payload = payload; this.brokerCounter = counter; }
}

describe('routed packet encoding (between brokers)', () => {
  it('gives the bytes msgpack-lite gives, for the packets Aedes routes', () => {
    const payloads = [0, 1, 31, 32, 254, 255, 256, 65_535, 65_536, 200_000].map((n) => Buffer.alloc(n, 7));
    payloads.push(Buffer.from(JSON.stringify({ seq: 1, device: 'MH-1', values: { a: 1.5 } })));
    const counters = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 40];
    for (const [i, payload] of payloads.entries()) {
      const p = new Packet(`cs:mq/cs/v1/gw-${i}/up/MH-${'x'.repeat(i * 7)}`, payload, counters[i % counters.length]);
      if (i % 2) p.clientId = `gw-${i}:edge`;
      const msg = { ...p, topic: p.topic };
      const id = `id-${'é'.repeat(i * 9)}/${i}`;
      expect(encodeRouted(id, msg)!.equals(msgpack.encode({ id, msg })), `payload of ${payload.length}`).toBe(true);
    }
  });

  it('covers every msgpack form of numbers, strings, arrays and nested objects (MQTT 5 properties)', () => {
    const values: unknown[] = [null, undefined, true, false, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1,
      0.5, -0.0, Number.NaN, 1e300, '', 'a'.repeat(31), 'b'.repeat(32), 'c'.repeat(255), 'd'.repeat(256), 'e'.repeat(70_000), '中'.repeat(11),
      [], [1, 'two', [3]], Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70_000 }, () => 0),
      { userProperties: { a: '1', b: ['x', 'y'] }, correlationData: Buffer.from([1, 2]), contentType: 'application/json' },
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]))];
    for (const v of values) {
      const msg = { topic: 't', properties: v };
      const bytes = encodeRouted('id', msg)!;
      expect(bytes.equals(msgpack.encode({ id: 'id', msg })), String(JSON.stringify(v)).slice(0, 40)).toBe(true);
      expect(msgpack.decode(bytes)).toEqual(msgpack.decode(msgpack.encode({ id: 'id', msg })));
    }
  });

  it('leaves what it does not cover (a Date, a typed array) to msgpack-lite', () => {
    expect(encodeRouted('id', { topic: 't', at: new Date(0) })).toBeUndefined();
    expect(encodeRouted('id', { topic: 't', raw: new Uint16Array(2) })).toBeUndefined();
  });
});
