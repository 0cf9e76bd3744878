import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStreamAppender } from '../../gateway/stream.ts';
import { partitionKey, partitionOf } from '../../lib/partition.ts';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/** The broker's appends, sent together per turn of the event loop (gateway/stream.ts), one entry each as before. */
const redisOk = await redisAvailable();

describe.skipIf(!redisOk)('stream appends', () => {
  const prefix = uniquePrefix('append');
  afterAll(() => deleteKeys(prefix));

  it('appends 1,200 readings made at once, each resolved after Redis has it, in order per partition with every field', async () => {
    const key = `${prefix}readings`;
    const appender = buildStreamAppender({ url: REDIS_URL, key, partitions: 3, brokerId: 'b-1', now: () => 1_700_000_000_000, logger: pino({ level: 'silent' }) });
    await appender.start();
    const redis = new Redis(REDIS_URL);
    try {
      const sent = Array.from({ length: 1200 }, (_, i) => ({ gw: `gw-${i % 7}`, topic: `cs/v1/gw-${i % 7}/up/d-${i}`, payload: Buffer.from([i % 256, 0, 255, i >> 8]) }));
      const done = await Promise.all(sent.map((s) => appender.append(s.topic, s.payload)));
      expect(done.every(Boolean)).toBe(true);
      expect(await appender.append('cs/v1/gw-1/state', Buffer.from('x'))).toBe(false); // not a reading: not appended
      for (let p = 0; p < 3; p++) {
        const entries = await redis.xrangeBuffer(partitionKey(key, p, 3), '-', '+');
        const mine = sent.filter((s) => partitionOf(s.gw, 3) === p);
        expect(entries.map(([, f]) => {
          const m = new Map<string, Buffer>();
          for (let i = 0; i < f.length; i += 2) m.set(f[i].toString(), f[i + 1]);
          return { gw: m.get('gw')!.toString(), topic: m.get('topic')!.toString(), payload: m.get('payload')!, broker: m.get('broker')!.toString(), at: m.get('at')!.toString() };
        })).toEqual(mine.map((s) => ({ ...s, broker: 'b-1', at: '1700000000000' })));
      }
    } finally {
      await appender.stop();
      await redis.quit();
    }
  });

  it('refuses the appends it holds when stopped before sending them', async () => {
    const appender = buildStreamAppender({ url: REDIS_URL, key: `${prefix}stopped`, brokerId: 'b-2', logger: pino({ level: 'silent' }) });
    await appender.start();
    const refused = expect(appender.append('cs/v1/gw-1/up/d-1', Buffer.from('{}'))).rejects.toThrow(/stopped/);
    await appender.stop();
    await refused;
  });
});
