import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDistrict } from '../../devices/district.ts';
import { loadProfiles } from '../../devices/profile.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { eventually } from '../helpers/process.ts';
import { closed, connectMqtt, deleteKeys, REDIS_URL, redisAvailable, uniquePrefix } from './helpers.ts';

/**
 * The hand-off at scale: two brokers append their gateways' readings to one Redis Stream
 * before each PUBACK; two cloud workers consume it through a consumer group into one
 * PostgreSQL. One worker is killed mid-stream; the other takes its pending entries over
 * (XAUTOCLAIM) and every reading is stored exactly once.
 */

const PG_ADMIN = process.env.CS_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_ADMIN, connectionTimeoutMillis: 1000 });
  try { await c.connect(); return true; } catch { return false; } finally { await c.end().catch(() => undefined); }
}
const redisOk = await redisAvailable();
const pgOk = await pgAvailable();
if (!redisOk || !pgOk) console.warn(`[skip] gateway stream tests: ${redisOk ? '' : `no Redis at ${REDIS_URL} `}${pgOk ? '' : `no PostgreSQL at ${PG_ADMIN}`}`);

const FIXTURE = fileURLToPath(new URL('./fixtures/stream-worker.ts', import.meta.url));
const profiles = loadProfiles();
const district = loadDistrict(fileURLToPath(new URL('../../devices/district/xiangzhou.yaml', import.meta.url)), profiles);
const GATEWAYS = [{ id: 'gw-xz-gongbei', device: 'XZ-MH-001' }, { id: 'gw-xz-jida', device: 'XZ-MH-003' }];
const PASS = 'gateway-password-01';

describe.skipIf(!redisOk || !pgOk)('readings through a Redis Stream to cloud workers', () => {
  const prefix = uniquePrefix('stream');
  const streamKey = `${prefix}readings`;
  const dbName = `cs_gwstream_${randomBytes(4).toString('hex')}`;
  let dbUrl: string;
  const services: GatewayService[] = [];
  const clients: MqttClient[] = [];
  const children: ChildProcess[] = [];
  const clouds: Cloud[] = [];
  let redis: Redis;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    await admin.query(`create database ${dbName}`);
    await admin.end();
    const u = new URL(PG_ADMIN);
    u.pathname = `/${dbName}`;
    dbUrl = u.toString();
    const db = openDatabase({ kind: 'postgres', url: dbUrl }, pino({ level: 'silent' }));
    await db.migrate(); // once, before the workers start
    await db.close();
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) await c.endAsync(true).catch(() => undefined);
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const c of clouds) await c.stop();
    for (const s of services) await s.stop();
    await redis?.quit();
    await deleteKeys(prefix);
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    for (let i = 0; i < 200; i++) {
      const r = await admin.query('select count(*)::int as n from pg_stat_activity where datname = $1', [dbName]);
      if (r.rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  });

  function startWorker(consumer: string, stallAt?: number): { child: ChildProcess; waitFor(re: RegExp): Promise<void>; output(): string } {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, CS_PG_URL: dbUrl, CS_REDIS_URL: REDIS_URL, CS_STREAM: streamKey, CS_GROUP: 'cloud', CS_CONSUMER: consumer, CS_LEASE_MS: '2000', ...(stallAt ? { CS_STALL_AT: String(stallAt) } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    child.stderr!.on('data', (d) => { out += d; });
    return {
      child,
      output: () => out,
      waitFor: (re) => eventually(() => {
        if (child.exitCode !== null) throw new Error(`worker exited: ${out}`);
        return re.test(out);
      }, 20_000, 25).then(() => undefined),
    };
  }

  async function storedReadings(): Promise<{ gateway: string; seq: number }[]> {
    const c = new pg.Client({ connectionString: dbUrl });
    await c.connect();
    try {
      return (await c.query('select gateway, seq::int as seq from readings order by gateway, seq')).rows;
    } finally {
      await c.end();
    }
  }

  async function publish(client: MqttClient, gw: { id: string; device: string }, from: number, to: number): Promise<void> {
    const sends: Promise<unknown>[] = [];
    for (let seq = from; seq <= to; seq++) {
      const reading = { seq, ts: new Date(Date.UTC(2026, 8, 14, 6, 0, 0, seq)).toISOString(), device: gw.device, values: { tilt_deg: 0.5, water_depth_m: 0.1 }, quality: 'good', historical: false };
      sends.push(client.publishAsync(`cs/v1/${gw.id}/up/${gw.device}`, JSON.stringify(reading), { qos: 1 }));
    }
    await Promise.all(sends);
  }

  it('stores every reading exactly once while a worker killed mid-stream has its pending readings taken over', async () => {
    const store = CredentialStore.memory();
    for (const g of GATEWAYS) store.create(g.id, 'gateway', PASS);
    for (let i = 0; i < 2; i++) {
      const svc = buildGatewayService({
        settings: {
          mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 65536 }, limits: { drainTimeoutMs: 30_000 },
          redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'readings', maxLen: 0 }, allowAnonymous: false,
        },
        credentials: store, logger: pino({ level: 'silent' }),
      });
      services.push(svc);
      await svc.start();
    }
    // Each gateway on a broker of its own.
    const edges = await Promise.all(GATEWAYS.map((g, i) => connectMqtt(`mqtt://127.0.0.1:${services[i].gateway.port}`, { username: g.id, password: PASS })));
    clients.push(...edges);

    // Worker A alone: it reads a batch and hangs on its 5th reading.
    const a = startWorker('worker-a', 5);
    await a.waitFor(/consuming/);
    await Promise.all(GATEWAYS.map((g, i) => publish(edges[i], g, 1, 25)));
    // Each PUBACK came after the XADD: the stream already holds all 50.
    expect(await redis.xlen(streamKey)).toBe(50);
    await a.waitFor(/stalled after 4, acked \d+/);
    // A hands a read's readings over together: all but the hanging one get stored, and none of
    // that read is acknowledged (its XACK waits for the hanging one). B must see them as duplicates.
    let storedByA = -1;
    await eventually(async () => {
      const before = (await storedReadings()).length;
      await new Promise((r) => setTimeout(r, 200));
      storedByA = (await storedReadings()).length;
      return before === storedByA;
    });
    const pendingOnA = await redis.xpending(streamKey, 'cloud', '-', '+', 1000, 'worker-a') as unknown[];
    // Pending on A: the hanging entry (not stored) and the stored ones of its read.
    const storedPendingOnA = pendingOnA.length - 1;
    expect(storedPendingOnA).toBeGreaterThanOrEqual(4 - Number(/acked (\d+)/.exec(a.output())![1]));
    expect(storedPendingOnA).toBeLessThanOrEqual(storedByA);

    // Worker B (the cloud's own redis-stream source) joins; then A dies mid-stream.
    const b = await buildCloud({
      db: { kind: 'postgres', url: dbUrl }, district, profiles, escalation: false,
      source: { kind: 'redis-stream', url: REDIS_URL, stream: streamKey, group: 'cloud', consumer: 'worker-b', leaseMs: 2000, blockMs: 100, claimIdleMs: 500, claimEveryMs: 200 },
    });
    clouds.push(b);
    await b.start();
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('exit', r));

    await Promise.all(GATEWAYS.map((g, i) => publish(edges[i], g, 26, 100)));

    const expected = GATEWAYS.flatMap((g) => Array.from({ length: 100 }, (_, i) => ({ gateway: g.id, seq: i + 1 }))).sort((x, y) => x.gateway.localeCompare(y.gateway) || x.seq - y.seq);
    await eventually(async () => (await storedReadings()).length === 200, 20_000);
    expect(await storedReadings()).toEqual(expected);
    // Nothing left pending: A's entries were claimed by B and acknowledged.
    await eventually(async () => ((await redis.xpending(streamKey, 'cloud')) as [number])[0] === 0, 10_000);
    // What A stored before hanging came again to B and was recognised as duplicates.
    expect(b.stats().duplicates).toBe(storedPendingOnA);
    expect(b.stats().stored).toBe(200 - storedByA);
  });

  it('refuses a reading the stream cannot take: no PUBACK, and the connection is closed so that the edge resends it', async () => {
    const store = CredentialStore.memory();
    store.create('gw-xz-jida', 'gateway', PASS);
    const svc = buildGatewayService({
      settings: {
        mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 65536 }, limits: { drainTimeoutMs: 30_000 },
        redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'not-a-stream', maxLen: 0 }, allowAnonymous: false,
      },
      credentials: store, logger: pino({ level: 'silent' }),
    });
    services.push(svc);
    await svc.start();
    await redis.set(`${prefix}not-a-stream`, 'a string, so XADD fails with WRONGTYPE');
    const edge = await connectMqtt(`mqtt://127.0.0.1:${svc.gateway.port}`, { username: 'gw-xz-jida', password: PASS });
    clients.push(edge);
    const lost = closed(edge);
    edge.publish('cs/v1/gw-xz-jida/up/XZ-MH-003', '{}', { qos: 1 });
    await lost;
    expect((await svc.metrics.streamErrors.get()).values[0].value).toBe(1);
  });
});

describe.skipIf(!redisOk)('the stream consumer alone', () => {
  it('leaves a failed entry pending, acknowledges a rejected one, and resumes its own pending entries after a restart', async () => {
    const { createStreamConsumer } = await import('../../cloud/stream.ts');
    const prefix = uniquePrefix('consumer');
    const key = `${prefix}readings`;
    const redis = new Redis(REDIS_URL);
    try {
      await redis.xadd(key, '*', 'gw', 'gw1', 'topic', 'cs/v1/gw1/up/d1', 'payload', 'db-down');
      await redis.xadd(key, '*', 'gw', 'gw1', 'topic', 'cs/v1/gw1/up/d1', 'payload', 'not-json');
      await redis.xadd(key, '*', 'junk', 'no fields we know');
      const seen: string[] = [];
      const options = { url: REDIS_URL, stream: key, group: 'cloud', consumer: 'w1', blockMs: 50, claimIdleMs: 60_000 };
      const first = createStreamConsumer({
        options, logger: pino({ level: 'silent' }),
        // The database is "down" for the first entry; the second is a bad payload (rejected for good: acknowledged).
        handle: async (e) => { seen.push(`1:${e.payload}`); return e.payload.toString() !== 'db-down'; },
      });
      await first.start();
      await eventually(() => first.stats().handled === 2 && first.stats().malformed === 1);
      await first.stop();
      expect(((await redis.xpending(key, 'cloud')) as [number])[0]).toBe(1);

      const second = createStreamConsumer({ options, logger: pino({ level: 'silent' }), handle: async (e) => { seen.push(`2:${e.payload}`); return true; } });
      await second.start(); // handles its own pending entry before anything new
      await second.stop();
      expect(seen).toEqual(['1:db-down', '1:not-json', '2:db-down']);
      expect(((await redis.xpending(key, 'cloud')) as [number])[0]).toBe(0);
    } finally {
      await redis.quit();
      await deleteKeys(prefix);
    }
  });
});
