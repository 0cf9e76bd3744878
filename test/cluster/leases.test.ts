import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ownerOf } from '../../cloud/stream-leases.ts';
import { createStreamConsumer } from '../../cloud/stream.ts';
import { buildStreamAppender } from '../../gateway/stream.ts';
import { hash32, partitionKey, partitionOf } from '../../lib/partition.ts';
import { deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';

/** The partition of a gateway and the owner of a partition (docs/architecture.md#partitions). */

describe('partitions and owners', () => {
  it('hashes a gateway to the same partition in every process and version', () => {
    // Fixed values: brokers and workers of different versions must agree.
    expect([hash32('gw-xz-gongbei'), hash32('gw-xz-jida')]).toEqual([745422579, 3434245069]);
    expect([partitionOf('gw-xz-gongbei', 16), partitionOf('gw-xz-jida', 16)]).toEqual([3, 13]);
    expect(partitionOf('anything', 1)).toBe(0);
    expect(partitionKey('cs:readings', 0, 1)).toBe('cs:readings');
    expect(partitionKey('cs:readings', 3, 16)).toBe('cs:readings:p3');
    // 1,000 gateways spread over 16 partitions: none empty, none over twice its share.
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 1000; i++) counts[partitionOf(`gw-${i}`, 16)]++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(125);
  });

  it('moves only the joining worker\'s share when a worker joins, and only the dead one\'s when it dies', () => {
    const two = ['w1', 'w2'];
    const three = ['w1', 'w2', 'w3'];
    const before = Array.from({ length: 64 }, (_, p) => ownerOf(p, two));
    const after = Array.from({ length: 64 }, (_, p) => ownerOf(p, three));
    for (let p = 0; p < 64; p++) if (after[p] !== 'w3') expect(after[p]).toBe(before[p]);
    expect(after.filter((o) => o === 'w3').length).toBeGreaterThan(10);
    // The member order does not matter.
    expect(Array.from({ length: 64 }, (_, p) => ownerOf(p, ['w3', 'w1', 'w2']))).toEqual(after);
    expect(ownerOf(0, [])).toBeUndefined();
  });
});

const redisOk = await redisAvailable();
describe.skipIf(!redisOk)('a partition count that differs', () => {
  it('is refused by the broker\'s appender and by the worker: CS_GW_STREAM_PARTITIONS, CS_CLOUD_STREAM_PARTITIONS', async () => {
    const prefix = uniquePrefix('count');
    const key = `${prefix}readings`;
    const logger = pino({ level: 'silent' });
    try {
      const first = buildStreamAppender({ url: REDIS_URL, key, partitions: 8, brokerId: 'b1', logger });
      await first.start();
      await first.stop();
      const other = buildStreamAppender({ url: REDIS_URL, key, partitions: 4, brokerId: 'b2', logger });
      await expect(other.start()).rejects.toMatchObject({ code: 'CS_GW_STREAM_PARTITIONS' });
      const worker = createStreamConsumer({ options: { url: REDIS_URL, stream: key, group: 'cloud', consumer: 'w1', partitions: 1 }, logger, handle: async () => true });
      await expect(worker.start()).rejects.toMatchObject({ code: 'CS_CLOUD_STREAM_PARTITIONS' });
      await worker.stop();
    } finally {
      await deleteKeys(prefix);
    }
  });
});
