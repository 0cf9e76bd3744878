import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cloud } from '../../cloud/app.ts';
import { defaultRuleSet } from '../../cloud/rules.ts';
import type { StreamAppender } from '../../gateway/stream.ts';
import { district, freshDatabase, pgAvailable, profiles, reading } from '../cloud/fixtures.ts';
import { deleteKeys, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';
import { eventually } from '../helpers/process.ts';
import { countOf, query, Redis, REDIS_URL, settled, startAppender, startWorker, type StreamSetup } from './helpers.ts';

/**
 * One device, one rule state (issue 15, docs/architecture.md#partitions): one device's readings
 * come alternately through two brokers (their stream appenders, as each runs before its PUBACK)
 * to two cloud workers on one PostgreSQL. Its tilt rule holds 10 s. Every reading is judged by the
 * one worker that owns the gateway's partition, so the hold is judged over all of them: a breach
 * broken every other reading opens nothing, and an unbroken one opens its case at 10 s, not before.
 * With each worker judging the readings it happens to get (before partitions), the first opened a
 * case from its own breaches 4 s apart and the second never saw 10 s.
 * When the partition moves to another worker, the hold in progress goes on there (the rule state
 * of each partition is saved in Redis after every batch).
 */

const redisOk = await redisAvailable();
if (!redisOk || !pgAvailable) console.warn('[skip] two-worker hold time: needs Redis and PostgreSQL');

const DEVICE = 'XZ-MH-001';
const GATEWAY = 'gw-xz-gongbei';
const TOPIC = `cs/v1/${GATEWAY}/up/${DEVICE}`;
const calm = { tilt_deg: 0.5, cover_open: false, water_depth_m: 0.1, gas_ch4_ppm: 40, gas_h2s_ppm: 1, battery_pct: 87 };
const tilted = { ...calm, tilt_deg: 15 };

describe.skipIf(!redisOk || !pgAvailable)('two workers, one device: a 10 s hold time judged over all its readings', () => {
  const prefix = uniquePrefix('hold');
  const s: StreamSetup = { stream: `${prefix}readings`, partitions: 8, leaseMs: 2000 };
  let fresh: Awaited<ReturnType<typeof freshDatabase>>;
  const workers: Cloud[] = [];
  const brokers: StreamAppender[] = [];
  let redis: Redis;

  beforeAll(async () => {
    fresh = await freshDatabase('postgres');
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    for (const b of brokers) await b.stop();
    await redis?.quit();
    await deleteKeys(prefix);
    await fresh?.drop();
  });

  it('opens no case for a breach broken every other reading, and one case once the breach has lasted 10 s', async () => {
    const rules = defaultRuleSet(profiles);
    rules.devices[DEVICE] = [{ id: 'cover-tilted', holdMs: 10_000 }];
    workers.push(await startWorker('worker-a', fresh.db, district, s, rules));
    workers.push(await startWorker('worker-b', fresh.db, district, s, rules));
    const owners = await settled(redis, s, ['worker-a', 'worker-b']);
    // Both workers own partitions: the device's is one of them.
    expect(new Set(owners).size).toBe(2);
    brokers.push(await startAppender('broker-a', s), await startAppender('broker-b', s));

    const t0 = Date.now() - 120_000;
    let seq = 0;
    // One at a time, each stored before the next is sent: alternately through broker a and b.
    const send = async (values: typeof calm, ts: number) => {
      seq++;
      await brokers[seq % 2].append(TOPIC, reading(DEVICE, seq, ts, values));
      await eventually(async () => await countOf(fresh.db, 'select count(*) as n from readings where device = $1', [DEVICE]) === seq, 10_000, 20);
    };
    const alarms = () => query<{ hazard: string; raised_at: string }>(fresh.db, 'select hazard, raised_at from alarms where device = $1', [DEVICE]);
    const cases = () => countOf(fresh.db, 'select count(*) as n from cases where device = $1', [DEVICE]);

    // Tilted, calm, tilted, calm... every 2 s for 24 s: each tilt lasts under 10 s.
    for (let i = 0; i < 12; i++) await send(i % 2 === 0 ? tilted : calm, t0 + i * 2000);
    expect(await alarms()).toEqual([]);
    expect(await cases()).toBe(0);

    // Tilted without a break, every 2 s: held 8 s after the fifth, 10 s at the sixth.
    const start = t0 + 30_000;
    for (let i = 0; i < 5; i++) await send(tilted, start + i * 2000);
    expect(await alarms()).toEqual([]);
    await send(tilted, start + 10_000);
    expect((await alarms()).map((a) => a.hazard)).toEqual(['cover-open']);
    expect(await cases()).toBe(1);

    // Through both brokers, but judged by one worker: the owner of the gateway's partition.
    const entries = await redis.xrange(`${s.stream}:p${(await import('../../lib/partition.ts')).partitionOf(GATEWAY, s.partitions)}`, '-', '+');
    expect(new Set(entries.map(([, f]) => f[f.indexOf('broker') + 1]))).toEqual(new Set(['broker-a', 'broker-b']));
    expect(workers.map((w) => w.stats().stored).sort((a, b) => a - b)).toEqual([0, 18]);
  });

  it('a hold in progress goes on when the partition moves to another worker', async () => {
    for (const w of workers.splice(0)) await w.stop();
    const s2: StreamSetup = { ...s, stream: `${prefix}moved:readings` };
    const rules = defaultRuleSet(profiles);
    rules.devices[DEVICE] = [{ id: 'cover-tilted', holdMs: 10_000 }];
    const broker = await startAppender('broker-a', s2);
    brokers.push(broker);
    const device = 'XZ-MH-002';
    const topic = `cs/v1/${GATEWAY}/up/${device}`;
    rules.devices[device] = [{ id: 'cover-tilted', holdMs: 10_000 }];
    const stored = () => countOf(fresh.db, 'select count(*) as n from readings where device = $1', [device]);
    const alarms = () => countOf(fresh.db, 'select count(*) as n from alarms where device = $1', [device]);
    const t0 = Date.now() - 60_000;
    let seq = 0;
    const send = async (ts: number) => {
      await broker.append(topic, reading(device, ++seq, ts, tilted));
      await eventually(async () => await stored() === seq, 10_000, 20);
    };

    // Worker A judges 6 s of the tilt, then stops; worker B takes the partition and judges on.
    const a = await startWorker('worker-a', fresh.db, district, s2, rules);
    workers.push(a);
    await settled(redis, s2, ['worker-a']);
    for (let i = 0; i < 4; i++) await send(t0 + i * 2000);
    await workers.pop()!.stop();
    workers.push(await startWorker('worker-b', fresh.db, district, s2, rules));
    await settled(redis, s2, ['worker-b']);
    await send(t0 + 8000);
    expect(await alarms()).toBe(0);
    await send(t0 + 10_000);
    expect(await alarms()).toBe(1);
    expect(workers[0].stats().stored).toBe(2);
  });
});
