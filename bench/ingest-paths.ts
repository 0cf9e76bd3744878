/**
 * The ingest bench's paths (bench/ingest-bench.ts): each starts its processes on a fresh database, names
 * the pids to measure, counts what it stored or counted, and stops. Ours runs as `citysteward gateway`
 * (Redis Stream, XADD before PUBACK) + `citysteward cloud` (consumer group, XACK after store), the
 * recommended separate-services deployment (docs/architecture.md#processes-and-deployments).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { stringify } from 'yaml';
import { runCli, type Running } from '../test/helpers/process.ts';
import { startBareAedes, startMosquitto, type Broker } from './brokers.ts';
import { SERVICE, account } from './identities.ts';
import { Worker } from './ipc.ts';
import { writeBytes } from './ingest-setup.ts';

export const REDIS_URL = process.env.CS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const PG_URL = process.env.CS_BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface PathRun {
  url: string;
  /** Processes whose CPU, peak RSS and writes count for this path (Redis and PostgreSQL apart). */
  pids: () => Promise<number[]>;
  /** Readings stored (or counted) so far. */
  count(): Promise<number>;
  /** Bytes written to storage so far. */
  written(): Promise<number>;
  stop(): Promise<void>;
}

export type PathName = 'ours' | 'single' | 'count' | 'sqlite' | 'nodered' | 'ours-pg' | 'sqlite-pg' | 'aedes-count' | 'aedes-sqlite' | 'bare-count';

/** A fresh directory with the bench's credentials and district (made once in `base`). */
function runDir(base: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-ingest-run-'));
  for (const f of ['credentials.json', 'district.yaml']) copyFileSync(join(base, f), join(dir, f));
  return dir;
}

function sqliteCount(file: string): number {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try { return (db.prepare('select count(*) as n from readings').get() as { n: number }).n; } finally { db.close(); }
  } catch {
    return 0;
  }
}

async function pgDatabase(): Promise<{ url: string; admin: pg.Client; drop(): Promise<void>; backends(): Promise<number[]>; wal(): Promise<number> }> {
  const name = `csb_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(), admin,
    async backends() {
      const r = await admin.query('select pid from pg_stat_activity where datname = $1', [name]);
      return r.rows.map((x: { pid: number }) => x.pid);
    },
    async wal() {
      const r = await admin.query('select wal_bytes::text as b from pg_stat_wal');
      return Number(r.rows[0].b);
    },
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
      await admin.end();
    },
  };
}

async function deleteKeys(prefix: string): Promise<void> {
  const r = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  await r.quit();
}

/** Ours, separate services: gateway → Redis Stream → cloud (SQLite or PostgreSQL). */
async function ours(base: string, kind: 'sqlite' | 'postgres'): Promise<PathRun> {
  const dir = runDir(base);
  const prefix = `csb-${randomBytes(4).toString('hex')}:`;
  const db = kind === 'postgres' ? await pgDatabase() : undefined;
  writeFileSync(join(dir, 'gateway.yaml'), stringify({ redis: { url: REDIS_URL, keyPrefix: prefix }, stream: { key: 'readings' } }));
  const env = { CS_LOG_LEVEL: 'warn' };
  const gw = runCli(['gateway', '--config', join(dir, 'gateway.yaml'), '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], env);
  const url = (await gw.waitFor(/MQTT listening on (mqtt:\/\/\S+)/, 60_000))[1]!;
  writeFileSync(join(dir, 'cloud.yaml'), stringify({
    district: 'district.yaml', http: { host: '127.0.0.1', port: 0 },
    database: db ? { kind: 'postgres', url: db.url } : { kind: 'sqlite', file: 'citysteward.db' },
    ...(db ? { photos: { dir: 'photos' } } : {}),
    mqtt: { url, ...account(SERVICE) },
    stream: { url: REDIS_URL, key: `${prefix}readings`, group: 'cloud', consumer: 'bench' },
  }));
  const cloud: Running = runCli(['cloud', '--config', join(dir, 'cloud.yaml'), '--data-dir', dir], env);
  try {
    await cloud.waitFor(/HTTP API on/, 60_000);
  } catch (err) { // leave nothing running behind a failed start
    await cloud.stop();
    await gw.stop();
    await db?.drop();
    await deleteKeys(prefix);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const file = join(dir, 'citysteward.db');
  const wal0 = db ? await db.wal() : 0;
  return {
    url,
    pids: async () => [gw.child.pid!, cloud.child.pid!, ...(db ? await db.backends() : [])],
    count: async () => db ? pgCount(db.url) : sqliteCount(file),
    written: async () => db ? (await db.wal()) - wal0 : writeBytes(cloud.child.pid!),
    async stop() {
      await cloud.stop();
      await gw.stop();
      await db?.drop();
      await deleteKeys(prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function pgCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return Number((await c.query('select count(*)::int as n from readings')).rows[0].n); } catch { return 0; } finally { await c.end(); }
}

/** Ours, the demo's single process: broker and cloud in one, store before PUBACK (SQLite). */
async function single(base: string): Promise<PathRun> {
  const dir = runDir(base);
  const w = new Worker('ingest-single.ts', [], [dir]);
  const { url } = await w.next<{ url: string }>('ready');
  const file = join(dir, 'citysteward.db');
  return {
    url, pids: async () => [w.pid], count: async () => sqliteCount(file), written: async () => writeBytes(w.pid),
    async stop() { await w.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Mosquitto (password, ACLs) → a subscriber process: counting, SQLite, PostgreSQL, or Node-RED. */
async function peer(mode: 'count' | 'sqlite' | 'pg' | 'nodered', nodeRedDir?: string): Promise<PathRun> {
  const broker: Broker = await startMosquitto();
  const dir = mkdtempSync(join(tmpdir(), 'cs-ingest-peer-'));
  const db = mode === 'pg' ? await pgDatabase() : undefined;
  const w = new Worker(mode === 'nodered' ? 'ingest-nodered.ts' : 'ingest-sub.ts');
  const target = db ? db.url : join(dir, 'peer.db');
  w.send({ type: 'start', url: broker.url, mode, target, dir: nodeRedDir ?? '', userDir: dir });
  await w.next('ready', 120_000);
  const wal0 = db ? await db.wal() : 0;
  return {
    url: broker.url,
    pids: async () => [broker.pid, w.pid, ...(db ? await db.backends() : [])],
    async count() { w.send({ type: 'count' }); return (await w.next<{ n: number }>('count')).n; },
    written: async () => db ? (await db.wal()) - wal0 : writeBytes(w.pid),
    async stop() {
      await w.stop();
      await broker.stop();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The ceiling our broker sets: `citysteward gateway` alone (no Redis, so PUBACK on receipt as Mosquitto's)
 * → the same peer subscriber, counting or inserting into SQLite. No cloud, no rules: what any cloud behind
 * this broker could reach at most on this machine.
 */
async function aedesPeer(base: string, mode: 'count' | 'sqlite'): Promise<PathRun> {
  const dir = runDir(base);
  writeFileSync(join(dir, 'gateway.yaml'), stringify({}));
  const gw = runCli(['gateway', '--config', join(dir, 'gateway.yaml'), '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'warn' });
  const url = (await gw.waitFor(/MQTT listening on (mqtt:\/\/\S+)/, 60_000))[1]!;
  const w = new Worker('ingest-sub.ts');
  w.send({ type: 'start', url, mode, target: join(dir, 'peer.db'), dir: '', userDir: dir });
  await w.next('ready', 120_000);
  return {
    url,
    pids: async () => [gw.child.pid!, w.pid],
    async count() { w.send({ type: 'count' }); return (await w.next<{ n: number }>('count')).n; },
    written: async () => writeBytes(w.pid),
    async stop() {
      await w.stop();
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Aedes alone in plain JavaScript (bench/bare-aedes-worker.js: a password check, no ACLs) → the counting subscriber. */
async function barePeer(): Promise<PathRun> {
  const broker = await startBareAedes();
  const dir = mkdtempSync(join(tmpdir(), 'cs-ingest-bare-'));
  const w = new Worker('ingest-sub.ts');
  w.send({ type: 'start', url: broker.url, mode: 'count', target: '', dir: '', userDir: dir });
  await w.next('ready', 120_000);
  return {
    url: broker.url,
    pids: async () => [broker.pid, w.pid],
    async count() { w.send({ type: 'count' }); return (await w.next<{ n: number }>('count')).n; },
    written: async () => 0,
    async stop() { await w.stop(); await broker.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}

export function startPath(name: PathName, base: string, nodeRedDir: string): Promise<PathRun> {
  switch (name) {
    case 'ours': return ours(base, 'sqlite');
    case 'ours-pg': return ours(base, 'postgres');
    case 'single': return single(base);
    case 'count': return peer('count');
    case 'sqlite': return peer('sqlite');
    case 'sqlite-pg': return peer('pg');
    case 'nodered': return peer('nodered', nodeRedDir);
    case 'aedes-count': return aedesPeer(base, 'count');
    case 'aedes-sqlite': return aedesPeer(base, 'sqlite');
    case 'bare-count': return barePeer();
  }
}
