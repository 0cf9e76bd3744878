import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Cloud } from '../../cloud/app.ts';
import type { StreamAppender } from '../../gateway/stream.ts';
import { partitionKey, partitionOf } from '../../lib/partition.ts';
import { freshDatabase, pgAvailable, reading, syntheticDistrict } from '../cloud/fixtures.ts';
import { deleteKeys, redisAvailable, uniquePrefix } from '../gateway/helpers.ts';
import { eventually } from '../helpers/process.ts';
import { countOf, query, Redis, REDIS_URL, settled, startAppender, startWorker, type StreamSetup } from './helpers.ts';

/**
 * Partitions follow the workers (docs/architecture.md#partitions): a worker that joins takes its
 * share, one that leaves hands its partitions on, and one killed mid-batch has its partitions and
 * its pending entries taken over once its leases run out; every reading is stored exactly once.
 */

const redisOk = await redisAvailable();
if (!redisOk || !pgAvailable) console.warn('[skip] partition rebalancing: needs Redis and PostgreSQL');

const FIXTURE = fileURLToPath(new URL('../gateway/fixtures/stream-worker.ts', import.meta.url));
const GATEWAYS = 8;
const district = syntheticDistrict(16, GATEWAYS);
const devices = district.devices.filter((d) => d.id.startsWith('WL-T-'));
const gatewayOf = (device: string) => `gw-t-${(Number(device.slice(5)) - 1) % GATEWAYS}`;

describe.skipIf(!redisOk || !pgAvailable)('partitions rebalance when workers join, leave or die', () => {
  const prefix = uniquePrefix('rebalance');
  const dir = mkdtempSync(join(tmpdir(), 'cs-rebalance-'));
  const workers: Cloud[] = [];
  const brokers: StreamAppender[] = [];
  const children: ChildProcess[] = [];
  const drops: (() => Promise<void>)[] = [];
  const redis = redisOk ? new Redis(REDIS_URL) : undefined;
  let test = 0;

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const w of workers.splice(0)) await w.stop();
    for (const b of brokers.splice(0)) await b.stop();
    for (const d of drops.splice(0)) await d();
  });
  afterAll(async () => {
    await redis?.quit();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  async function setup(): Promise<{ s: StreamSetup; db: Awaited<ReturnType<typeof freshDatabase>>['db']; send(from: number, to: number): Promise<void> }> {
    const fresh = await freshDatabase('postgres');
    drops.push(fresh.drop);
    const s: StreamSetup = { stream: `${prefix}${++test}:readings`, partitions: 8, leaseMs: 1500 };
    const broker = await startAppender('broker-a', s);
    brokers.push(broker);
    const t0 = Date.now() - 600_000;
    return {
      s, db: fresh.db,
      async send(from, to) {
        for (let seq = from; seq <= to; seq++) {
          await Promise.all(devices.map((d) => broker.append(`cs/v1/${gatewayOf(d.id)}/up/${d.id}`, reading(d.id, seq, t0 + seq * 1000, { level_m: 0.2 }))));
        }
      },
    };
  }

  async function exactlyOnce(db: Awaited<ReturnType<typeof setup>>['db'], perDevice: number): Promise<void> {
    await eventually(async () => await countOf(db, 'select count(*) as n from readings where device like $1', ['WL-T-%']) === devices.length * perDevice, 20_000);
    const rows = await query<{ device: string; n: string; lo: number; hi: number }>(db,
      "select device, count(*) as n, min(seq)::int as lo, max(seq)::int as hi from readings where device like 'WL-T-%' group by device order by device");
    expect(rows.map((r) => [r.device, Number(r.n), r.lo, r.hi])).toEqual(devices.map((d) => [d.id, perDevice, 1, perDevice]).sort());
  }

  it('a worker that joins takes its share of the partitions; one that leaves hands them back; nothing is lost or stored twice', async () => {
    const { s, db, send } = await setup();
    // The test gateways spread over several partitions.
    expect(new Set(devices.map((d) => partitionOf(gatewayOf(d.id), s.partitions))).size).toBeGreaterThan(3);
    workers.push(await startWorker('worker-a', db, district, s));
    expect(new Set(await settled(redis!, s, ['worker-a']))).toEqual(new Set(['worker-a']));
    await send(1, 10);
    await exactlyOnce(db, 10);

    workers.push(await startWorker('worker-b', db, district, s));
    const split = await settled(redis!, s, ['worker-a', 'worker-b']);
    expect(new Set(split)).toEqual(new Set(['worker-a', 'worker-b']));
    await send(11, 20);
    await exactlyOnce(db, 20);
    // Each reading went to the owner of its gateway's partition.
    const ownedByB = devices.filter((d) => split[partitionOf(gatewayOf(d.id), s.partitions)] === 'worker-b').length;
    await eventually(() => workers[1].stats().stored === ownedByB * 10);

    const b = workers.pop()!;
    await b.stop();
    expect(new Set(await settled(redis!, s, ['worker-a']))).toEqual(new Set(['worker-a']));
    await send(21, 30);
    await exactlyOnce(db, 30);
    expect(workers[0].stats().duplicates + b.stats().duplicates).toBe(0);
    for (let p = 0; p < s.partitions; p++) expect(((await redis!.xpending(partitionKey(s.stream, p, s.partitions), 'cloud')) as [number])[0]).toBe(0);
  });

  it('a worker killed mid-batch: the other takes its partitions and pending entries once its leases expire', async () => {
    const { s, db, send } = await setup();
    const file = join(dir, `district-${test}.yaml`);
    writeFileSync(file, stringify(district));
    // Worker A, a process of its own, alone: it owns every partition and hangs on its 20th entry.
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, CS_PG_URL: (db as { url: string }).url, CS_REDIS_URL: REDIS_URL, CS_STREAM: s.stream, CS_GROUP: 'cloud', CS_CONSUMER: 'worker-a', CS_STALL_AT: '20', CS_PARTITIONS: String(s.partitions), CS_LEASE_MS: String(s.leaseMs), CS_DISTRICT: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { out += d; });
    await eventually(() => { if (child.exitCode !== null) throw new Error(out); return /consuming/.test(out); }, 30_000, 25);
    await send(1, 10);
    await eventually(() => /stalled/.test(out), 20_000, 25);
    const pendingOnA = async () => {
      let n = 0;
      for (let p = 0; p < s.partitions; p++) n += ((await redis!.xpending(partitionKey(s.stream, p, s.partitions), 'cloud')) as [number])[0];
      return n;
    };
    expect(await pendingOnA()).toBeGreaterThan(0);

    // B joins: A, stuck in its batch, keeps renewing but cannot hand over; then A dies.
    workers.push(await startWorker('worker-b', db, district, s));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await send(11, 20);
    expect(new Set(await settled(redis!, s, ['worker-b']))).toEqual(new Set(['worker-b']));
    await exactlyOnce(db, 20);
    await eventually(async () => await pendingOnA() === 0, 10_000);
  });
});
