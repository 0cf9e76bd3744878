import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cloud } from '../../cloud/app.ts';
import { district, freshDatabase, pgAvailable } from '../cloud/fixtures.ts';
import { deleteKeys, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';
import { eventually } from '../helpers/process.ts';
import { openStream, Redis, REDIS_URL, settled, startWorker, type Sse, type StreamSetup } from './helpers.ts';

/**
 * What every worker must show alike (docs/architecture.md#partitions): an event emitted on one
 * worker reaches the live streams of both, once each; an acknowledgement of the mode command that
 * reached one worker shows on the other.
 */

const redisOk = await redisAvailable();
if (!redisOk || !pgAvailable) console.warn('[skip] events and acknowledgements across workers: needs Redis and PostgreSQL');

describe.skipIf(!redisOk || !pgAvailable)('two workers show the same events and acknowledgements', () => {
  const prefix = uniquePrefix('shared');
  const s: StreamSetup = { stream: `${prefix}readings`, partitions: 4, leaseMs: 2000 };
  let fresh: Awaited<ReturnType<typeof freshDatabase>>;
  const workers: Cloud[] = [];
  const streams: Sse[] = [];
  let redis: Redis;

  beforeAll(async () => {
    fresh = await freshDatabase('postgres');
    redis = new Redis(REDIS_URL);
    workers.push(await startWorker('worker-a', fresh.db, district, s, undefined, 100));
    workers.push(await startWorker('worker-b', fresh.db, district, s, undefined, 100));
    await settled(redis, s, ['worker-a', 'worker-b']);
  });
  afterAll(async () => {
    for (const x of streams) x.close();
    for (const w of workers) await w.stop();
    await redis?.quit();
    await deleteKeys(prefix);
    await fresh?.drop();
  });

  it('an event emitted on worker A reaches an SSE client on A and one on B, once each', async () => {
    const [a, b] = workers;
    const onA = await openStream(await a.app.listen({ host: '127.0.0.1', port: 0 }), await a.tokens.create('operator'));
    const onB = await openStream(await b.app.listen({ host: '127.0.0.1', port: 0 }), await b.tokens.create('operator'));
    streams.push(onA, onB);
    await eventually(() => a.events.listeners() >= 2 && b.events.listeners() >= 2); // the relay and the stream
    a.events.emit({ type: 'case.reminder', at: new Date().toISOString(), caseId: 'c-from-a', unit: 'xz-drainage', data: { n: 1 } });
    b.events.emit({ type: 'case.reminder', at: new Date().toISOString(), caseId: 'c-from-b', unit: 'xz-drainage', data: { n: 2 } });
    await eventually(() => onA.events.length >= 2 && onB.events.length >= 2, 5000, 20);
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
    for (const x of [onA, onB]) {
      expect(x.events.map((e) => e.data.caseId).sort()).toEqual(['c-from-a', 'c-from-b']);
      // The ids are the receiving worker's sequence: increasing on each stream.
      expect(Number(x.events[1].id)).toBeGreaterThan(Number(x.events[0].id));
    }
  });

  it('an acknowledgement recorded through worker A shows through worker B', async () => {
    const [a, b] = workers;
    const state = await a.emergency!.switchMode({ mode: 'emergency', level: 'IV', actor: 'commander-1', role: 'commander', reason: 'drill' });
    const id = `mode-${state.epoch}`;
    // B follows the switch (it re-reads the mode) without sending the command itself.
    await eventually(() => b.emergency!.status().gateways.id === id, 5000, 20);
    // Only A hears this one (as if B's MQTT missed it).
    a.emergency!.fanout.onAck('gw-xz-gongbei', { id, outcome: 'ok' });
    await eventually(() => b.emergency!.status().gateways.acknowledged.length === 1, 5000, 20);
    const [sa, sb] = [a.emergency!.status().gateways, b.emergency!.status().gateways];
    expect(sb.acknowledged).toEqual(sa.acknowledged);
    expect(sb.acknowledged.map((x) => x.gateway)).toEqual(['gw-xz-gongbei']);
    expect(sb.missing.map((x) => x.gateway)).toEqual(sa.missing.map((x) => x.gateway));
    expect(sb.missing.map((x) => x.gateway)).toEqual(['gw-xz-jida']);
    // Through the API too.
    const token = await b.tokens.create('commander');
    const res = await b.app.inject({ method: 'GET', url: '/api/emergency', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json().gateways.acknowledged.map((x: { gateway: string }) => x.gateway)).toEqual(['gw-xz-gongbei']);
  });
});
