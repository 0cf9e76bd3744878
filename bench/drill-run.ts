import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { partitionKey } from '../lib/partition.ts';
import { CLUSTER_PARTITIONS } from '../cli/cluster-init.ts';
import { Sqlite } from '../lib/sqlite.ts';
import { loadProfiles } from '../devices/profile.ts';
import { writePoint } from '../devices/sim-client.ts';
import { buildCluster, ensureDatabase, type Cluster } from '../cli/cluster.ts';
import { OUTBOX_FILE } from '../edge/outbox.ts';
import { SEQ_FILE } from '../edge/seq.ts';
import type { Restartable } from './drill-services.ts';

/**
 * One fault drill through a cluster of `citysteward cluster up` (cli/cluster.ts): steady load (both edges
 * publish every poll), a known breach written to one water-level sensor of each gateway just before the
 * fault, the fault, the time until every gateway's new readings are stored again, then a clean stop of
 * the edges (outboxes flushed) and the count: acknowledged seqs (the edges' seq.json less what is still in
 * their outbox) against the rows stored (readings and edge alarms), and one case per breached sensor.
 */

export type DrillKind = 'broker' | 'worker' | 'postgres' | 'redis';

export const DRILL_TITLES: Record<DrillKind, string> = {
  broker: 'SIGKILL one broker',
  worker: 'SIGKILL one cloud worker',
  postgres: 'restart PostgreSQL',
  redis: 'restart Redis',
};

export interface DrillResult {
  kind: DrillKind;
  /** Readings and edge alarms acknowledged to the edges (PUBACK), all gateways. */
  acknowledged: number;
  stored: number;
  lost: number;
  duplicated: number;
  /** Breached sensors without a case, and cases beyond one per breached sensor and hazard. */
  missedCases: number;
  duplicateCases: number;
  breaches: number;
  /** From the fault until every gateway has a reading read after the fault stored, ms. */
  recoveryMs: number;
  /** From the fault until the stream has nothing pending (every entry stored and acknowledged), ms; after the edges stopped. */
  drainedMs: number;
  /** Readings per second stored during the steady phase before the fault. */
  loadPerS: number;
  durationS: number;
}

export interface DrillEnv {
  dir: string;
  redisUrl: string;
  /** A PostgreSQL URL of the server (any database); the drill makes its own database. */
  pgUrl: string;
  /** The drills' own servers, for the restart drills. */
  redis?: Restartable;
  postgres?: Restartable;
  log: (s: string) => void;
  /** Seconds of steady load before the fault; default 8. */
  steadyS?: number;
}

/** The breached sensor of each gateway (water level, no scenario of its own). */
const BREACH: Record<string, string> = { 'gw-xz-gongbei': 'XZ-WL-003', 'gw-xz-jida': 'XZ-WL-005' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runDrill(kind: DrillKind, env: DrillEnv): Promise<DrillResult> {
  const started = Date.now();
  const dbName = `cs_drill_${kind}_${randomBytes(3).toString('hex')}`;
  const u = new URL(env.pgUrl);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  await ensureDatabase(databaseUrl);
  const dir = join(env.dir, `${kind}-${randomBytes(3).toString('hex')}`);
  const cluster = buildCluster({ dir, redisUrl: env.redisUrl, databaseUrl, scenarios: false, pollMs: 200, everyPoll: true, logLevel: 'warn' });
  const db = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  db.on('error', () => undefined); // PostgreSQL restarts under the drill
  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => (await db.query(sql, params)).rows as T[];
  try {
    const at = await cluster.start();
    env.log(`   cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s (${at.brokers.length} brokers, ${at.clouds.length} workers)`);
    const count = async () => Number((await query<{ n: string }>('SELECT count(*) AS n FROM readings'))[0]!.n);
    await waitFor(async () => (await count()) > 50, 60_000, 'no readings stored');
    const c0 = await count();
    const t0 = Date.now();
    await sleep((env.steadyS ?? 8) * 1000);
    const loadPerS = ((await count()) - c0) / ((Date.now() - t0) / 1000);

    // The known breaches: written to the simulators just before the fault.
    const profiles = loadProfiles();
    for (const device of Object.values(BREACH)) {
      const d = cluster.district.devices.find((x) => x.id === device)!;
      const ep = at.buses[d.bus]!;
      await writePoint({ host: ep.host, port: ep.port, unitId: d.unitId, profile: profiles.get(d.profile)!, key: 'level_m', value: 0.92 });
    }
    const faultAt = Date.now();
    await fault(kind, cluster, env);
    env.log(`   fault: ${DRILL_TITLES[kind]}`);
    const gateways = cluster.district.gateways.map((g) => g.id);
    await waitFor(async () => {
      const fresh = await query<{ gateway: string }>('SELECT DISTINCT gateway FROM readings WHERE ts >= $1', [faultAt]).catch(() => []);
      return fresh.length === gateways.length;
    }, 120_000, 'readings after the fault not stored for every gateway');
    const recoveryMs = Date.now() - faultAt;
    env.log(`   recovered in ${(recoveryMs / 1000).toFixed(1)} s`);
    await heal(kind, cluster);
    // The breach cases (urgent rules hold a moment; a partition that moved restarts its hold).
    await waitFor(async () => (await casesOf(query)).length >= gateways.length, 60_000, 'breach cases not opened').catch(() => undefined);
    await sleep(3000);

    // Stop the edges cleanly: each flushes its outbox; what stays there was never acknowledged.
    await Promise.all(gateways.map((g) => cluster.services.get(`edge-${g}`)!.stop()));
    const acked = new Map<string, Set<number>>();
    for (const g of gateways) acked.set(g, acknowledgedSeqs(join(dir, `edge-${g}`)));
    const acknowledged = [...acked.values()].reduce((n, s) => n + s.size, 0);
    // The workers drain the stream: stored rows reach the acknowledged count, or stop growing.
    const rowsOf = async () => query<{ gateway: string; seq: string }>('SELECT gateway, seq FROM readings UNION ALL SELECT gateway, seq FROM edge_alarms');
    const lostOf = (rows: { gateway: string; seq: string }[]) => {
      const have = new Set(rows.map((r) => `${r.gateway}/${r.seq}`));
      let n = 0;
      for (const [g, seqs] of acked) for (const s of seqs) if (!have.has(`${g}/${s}`)) n++;
      return n;
    };
    // Entries whose storing failed during the fault stay pending until retried (the workers' claimIdleMs, 30 s).
    const redis = new Redis(env.redisUrl, { maxRetriesPerRequest: 1 });
    const pendingOf = async () => {
      let n = 0;
      for (let p = 0; p < CLUSTER_PARTITIONS; p++) n += Number(((await redis.xpending(partitionKey(at.redis.stream, p, CLUSTER_PARTITIONS), 'cloud').catch(() => [0])) as unknown[])[0] ?? 0);
      return n;
    };
    let rows = await rowsOf();
    let drainedMs = 0;
    try {
      for (let stable = 0, i = 0; i < 150; i++) {
        const pending = await pendingOf();
        if (pending === 0 && (lostOf(rows) === 0 || stable >= 3)) break;
        await sleep(1000);
        const before = rows.length;
        rows = await rowsOf();
        stable = rows.length === before ? stable + 1 : 0;
      }
      drainedMs = Date.now() - faultAt;
    } finally {
      redis.disconnect();
    }
    const seen = new Set<string>();
    let duplicated = 0;
    for (const r of rows) {
      const k = `${r.gateway}/${r.seq}`;
      if (seen.has(k)) duplicated++;
      seen.add(k);
    }
    const lost = lostOf(rows);
    const cases = await casesOf(query);
    const breached = new Set(Object.values(BREACH));
    const perDevice = new Map<string, number>();
    for (const c of cases) perDevice.set(c.device, (perDevice.get(c.device) ?? 0) + 1);
    const missedCases = [...breached].filter((d) => !perDevice.has(d)).length;
    const duplicateCases = [...perDevice.values()].reduce((n, k) => n + k - 1, 0);
    return {
      kind, acknowledged, stored: seen.size, lost, duplicated, missedCases, duplicateCases, breaches: breached.size,
      recoveryMs, drainedMs, loadPerS, durationS: (Date.now() - started) / 1000,
    };
  } finally {
    await cluster.stop();
    await dropKeys(env.redisUrl, dir).catch(() => undefined);
    await db.end().catch(() => undefined);
    const admin = new pg.Client({ connectionString: env.pgUrl });
    await admin.connect().then(() => admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`)).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

/** Sensor cases of the drill: one expected per breached sensor (waterlogging); none for others. */
async function casesOf(query: <T>(sql: string, params?: unknown[]) => Promise<T[]>): Promise<{ device: string; hazard: string }[]> {
  return query<{ device: string; hazard: string }>("SELECT device, hazard FROM cases WHERE hazard = 'waterlogging'").catch(() => []);
}

async function fault(kind: DrillKind, cluster: Cluster, env: DrillEnv): Promise<void> {
  if (kind === 'broker') return cluster.services.get('broker-1')!.kill();
  if (kind === 'worker') return cluster.services.get('cloud-1')!.kill();
  const server = kind === 'postgres' ? env.postgres : env.redis;
  if (!server) throw new Error(`the ${kind} drill needs the drills' own ${kind} server`);
  await server.restart();
}

/** After the measurement the killed process is started again, as an operator (or systemd) would. */
async function heal(kind: DrillKind, cluster: Cluster): Promise<void> {
  if (kind === 'broker') await cluster.services.get('broker-1')!.start();
  if (kind === 'worker') await cluster.services.get('cloud-1')!.start();
}

/** Seqs an edge handed out (seq.json after a clean stop holds the exact next one) less those still in its outbox. */
function acknowledgedSeqs(dataDir: string): Set<number> {
  const { seqReserved } = JSON.parse(readFileSync(join(dataDir, SEQ_FILE), 'utf8')) as { seqReserved: number };
  const out = new Set<number>();
  for (let s = 1; s < seqReserved; s++) out.add(s);
  const file = join(dataDir, OUTBOX_FILE);
  if (existsSync(file)) {
    const box = new Sqlite(file);
    try {
      for (const r of box.prepare('SELECT seq FROM outbox').all() as { seq: number }[]) out.delete(r.seq);
    } finally {
      box.close();
    }
  }
  return out;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`${what} within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Deletes the cluster's Redis keys (its prefix in cluster.json): a drill on a shared Redis leaves nothing. */
async function dropKeys(url: string, dir: string): Promise<void> {
  const file = join(dir, 'cluster.json');
  if (!existsSync(file)) return;
  const { keyPrefix } = JSON.parse(readFileSync(file, 'utf8')) as { keyPrefix: string };
  if (!keyPrefix.startsWith('cs:cluster:')) return;
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    for (let cursor = '0'; ;) {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      if (keys.length) await r.del(...keys);
      if ((cursor = next) === '0') break;
    }
  } finally {
    r.disconnect();
  }
}
