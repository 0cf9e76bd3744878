/** Shared steps of the partition tests: workers on one stream, lease inspection, stored rows. */
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import type { RuleSet } from '../../cloud/rules.ts';
import { leaseKey, membersKey, ownerOf } from '../../cloud/stream-leases.ts';
import type { District } from '../../devices/district.ts';
import { buildStreamAppender, type StreamAppender } from '../../gateway/stream.ts';
import { profiles } from '../cloud/fixtures.ts';
import { REDIS_URL } from '../gateway/helpers.ts';
import { eventually } from '../helpers/process.ts';

export const silent = pino({ level: 'silent' });

export interface StreamSetup { stream: string; partitions: number; leaseMs: number }

/** A cloud worker reading the stream (started). */
export async function startWorker(name: string, db: DbOptions, district: District, s: StreamSetup, rules?: RuleSet, emergencySyncMs?: number): Promise<Cloud> {
  const c = await buildCloud({
    db, district, profiles, rules, escalation: false, emergency: emergencySyncMs ? { syncMs: emergencySyncMs, retryMs: 60_000 } : undefined,
    source: { kind: 'redis-stream', url: REDIS_URL, stream: s.stream, group: 'cloud', consumer: name, partitions: s.partitions, leaseMs: s.leaseMs, blockMs: 100, claimIdleMs: 2000, claimEveryMs: 500 },
  });
  await c.start();
  return c;
}

/** What a broker does with a reading before its PUBACK (gateway/stream.ts), as broker `brokerId`. */
export async function startAppender(brokerId: string, s: StreamSetup): Promise<StreamAppender> {
  const a = buildStreamAppender({ url: REDIS_URL, key: s.stream, partitions: s.partitions, maxLen: 0, brokerId, logger: silent });
  await a.start();
  return a;
}

/** The holder of each partition's lease (its worker name), null when free. */
export async function holders(redis: Redis, s: StreamSetup): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (let p = 0; p < s.partitions; p++) {
    const v = await redis.get(leaseKey(s.stream, p));
    out.push(v ? v.slice(0, v.lastIndexOf('#')) : null);
  }
  return out;
}

/** Waits until exactly `workers` are members and each partition is leased to its assigned one. */
export async function settled(redis: Redis, s: StreamSetup, workers: string[], ms = 15_000): Promise<(string | null)[]> {
  let last: (string | null)[] = [];
  await eventually(async () => {
    const members = (await redis.zrange(membersKey(s.stream), 0, -1)).sort();
    last = await holders(redis, s);
    return members.join() === [...workers].sort().join() && last.every((h, p) => h === ownerOf(p, workers));
  }, ms, 50);
  return last;
}

/** A query on the workers' PostgreSQL database. */
export async function query<T = Record<string, unknown>>(db: DbOptions, sql: string, params: unknown[] = []): Promise<T[]> {
  if (db.kind !== 'postgres') throw new Error('postgres only');
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

export const countOf = async (db: DbOptions, sql: string, params: unknown[] = []): Promise<number> => Number((await query<{ n: string }>(db, sql, params))[0].n);

export { openStream, type Sse } from '../helpers/sse.ts';

export { Redis, REDIS_URL };
