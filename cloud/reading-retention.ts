import { sql } from 'kysely';
import type { Logger } from '../lib/log.ts';
import type { Database } from './db/database.ts';
import { ROLLUP_LEVELS } from './db/rollups.ts';

/**
 * How long readings are kept (README "Retention of readings", docs/architecture.md#rollups): raw rows
 * `rawDays` (default 30), minute rollups `minuteDays` (default 90: a replayed reading up to
 * READING_MAX_AGE_MS old still lands in a kept minute bucket, nearly), hour rollups `hourDays`
 * (default 730, two years). A timer every `pruneEveryMs` deletes what is older, per device, in
 * deletes of at most `pruneChunk` rows, each its own short write transaction, yielding in between,
 * so ingest waits for one chunk at most.
 */
export interface RetentionPolicy {
  rawDays: number;
  minuteDays: number;
  hourDays: number;
  pruneEveryMs: number;
  pruneChunk: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { rawDays: 30, minuteDays: 90, hourDays: 730, pruneEveryMs: 10 * 60_000, pruneChunk: 5000 };

export const DAY_MS = 86_400_000;

/** The problems of a policy (empty when sound): positive numbers, and no finer level kept longer than a coarser one. */
export function checkRetention(p: RetentionPolicy): string[] {
  const problems: string[] = [];
  for (const k of ['rawDays', 'minuteDays', 'hourDays', 'pruneEveryMs', 'pruneChunk'] as const) {
    if (!(Number.isFinite(p[k]) && p[k] > 0)) problems.push(`retention.${k} must be a positive number (got ${p[k]})`);
  }
  if (p.minuteDays < p.rawDays) problems.push(`retention.minuteDays (${p.minuteDays}) is shorter than rawDays (${p.rawDays})`);
  if (p.hourDays < p.minuteDays) problems.push(`retention.hourDays (${p.hourDays}) is shorter than minuteDays (${p.minuteDays})`);
  return problems;
}

export interface PruneCounts { raw: number; minute: number; hour: number }

export interface ReadingPruner {
  start(): void;
  stop(): Promise<void>;
  /** One pass over every device (the timer's work); concurrent calls share the pass. */
  prune(): Promise<PruneCounts>;
}

/** One bounded delete: at most `limit` rows of the device older than `before`, by the row's physical id (SQLite rollups: key). */
function chunkDelete(kind: Database['kind'], table: string, column: 'ts' | 'bucket', device: string, before: number, limit: number) {
  const t = sql.table(table);
  const c = sql.ref(column);
  return kind === 'sqlite'
    ? table === 'readings'
      ? sql`delete from ${t} where rowid in (select rowid from ${t} where device = ${device} and ${c} < ${before} limit ${limit})`
      // The rollups are WITHOUT ROWID tables keyed (device, bucket, point) on SQLite (migration 0019).
      : sql`delete from ${t} where (device, bucket, point) in (select device, bucket, point from ${t} where device = ${device} and ${c} < ${before} limit ${limit})`
    : sql`delete from ${t} where ctid = any(array(select ctid from ${t} where device = ${device} and ${c} < ${before}::bigint limit ${limit}))`;
}

export function createReadingPruner(opts: { database: Database; now: () => number; logger: Logger; policy: RetentionPolicy }): ReadingPruner {
  const { database, now, logger, policy } = opts;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<PruneCounts> | undefined;
  let stopping = false;

  async function drain(table: string, column: 'ts' | 'bucket', device: string, before: number): Promise<number> {
    let total = 0;
    while (!stopping) {
      const r = await database.write((trx) => chunkDelete(database.kind, table, column, device, before, policy.pruneChunk).execute(trx));
      const n = Number(r.numAffectedRows ?? 0n);
      total += n;
      if (n < policy.pruneChunk) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return total;
  }

  async function pass(): Promise<PruneCounts> {
    const at = now();
    const counts: PruneCounts = { raw: 0, minute: 0, hour: 0 };
    const devices = (await database.db.selectFrom('device_state').select('device').execute()).map((d) => d.device);
    const [minute, hour] = ROLLUP_LEVELS;
    for (const device of devices) {
      counts.raw += await drain('readings', 'ts', device, at - policy.rawDays * DAY_MS);
      // A bucket goes once it ended before the cutoff.
      counts.minute += await drain(minute.table, 'bucket', device, at - policy.minuteDays * DAY_MS - minute.ms + 1);
      counts.hour += await drain(hour.table, 'bucket', device, at - policy.hourDays * DAY_MS - hour.ms + 1);
    }
    if (counts.raw + counts.minute + counts.hour) logger.info(counts, 'old readings and rollups pruned');
    return counts;
  }

  function prune(): Promise<PruneCounts> {
    running ??= pass().finally(() => { running = undefined; });
    return running;
  }

  return {
    start() {
      stopping = false;
      timer ??= setInterval(() => {
        prune().catch((err) => logger.warn({ err: (err as Error)?.message }, 'pruning readings failed; next time'));
      }, policy.pruneEveryMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      stopping = true;
      await running?.catch(() => undefined);
    },
    prune,
  };
}
