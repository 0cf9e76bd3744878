import { sql } from 'kysely';
import type { Database } from './database.ts';
import { readingBuckets, type BucketQuery, type BucketStat } from './reading-buckets.ts';
import { ROLLUP_LEVELS, type RollupLevel } from './rollups.ts';

/**
 * Which level answers a bucketed history (docs/architecture.md#rollups): raw rows when the step is
 * under a minute and the span lies within the raw retention; else minute rollups when the step is
 * under an hour (and the span within their retention); else hour rollups. On a rollup level the
 * step is rounded up to a multiple of the level and the span widened to level boundaries, so each
 * bucket is a whole number of rollup buckets and the answer equals a direct aggregate of the raw
 * rows over the returned from, to and stepMs.
 */
export interface HistoryPlan { level: 'raw' | RollupLevel; from: number; to: number; stepMs: number }

/** `keptDays`: how far back each level reaches (the retention policy's days). */
export function planHistory(q: { from: number; to: number; stepMs: number; now: number; maxBuckets: number },
  kept: { rawDays: number; minuteDays: number }): HistoryPlan {
  const reaches = (days: number) => q.from >= q.now - days * 86_400_000;
  const [minute, hour] = ROLLUP_LEVELS;
  if (q.stepMs < minute.ms && reaches(kept.rawDays)) return { level: 'raw', from: q.from, to: q.to, stepMs: q.stepMs };
  const level = q.stepMs < hour.ms && reaches(kept.minuteDays) ? minute : hour;
  const from = Math.floor(q.from / level.ms) * level.ms;
  const to = Math.ceil(q.to / level.ms) * level.ms;
  let stepMs = Math.ceil(q.stepMs / level.ms) * level.ms;
  // Widening the span may add a bucket past the cap: a coarser step then.
  while (Math.ceil((to - from) / stepMs) > q.maxBuckets) stepMs += level.ms;
  return { level, from, to, stepMs };
}

/** The plan's answer: per point, the buckets that hold at least one value, oldest first. */
export async function historyBuckets(database: Database, plan: HistoryPlan, q: Pick<BucketQuery, 'device' | 'points'>): Promise<Record<string, BucketStat[]>> {
  if (plan.level === 'raw') return readingBuckets(database, { ...q, from: plan.from, to: plan.to, stepMs: plan.stepMs });
  return rollupBuckets(database, plan.level, { ...q, from: plan.from, to: plan.to, stepMs: plan.stepMs });
}

/**
 * The statement over a rollup table (exported for the query-plan test); `from` and `stepMs` are multiples
 * of the level. SQLite is held to the (device, bucket) index: with one device's statistics it may scan.
 */
export function rollupStatement(kind: Database['kind'], level: RollupLevel, q: BucketQuery) {
  const t = sql.table(level.table);
  const points = sql.join(q.points.map((p) => sql`${p}`));
  const from = kind === 'sqlite' ? sql`${q.from}` : sql`${q.from}::bigint`;
  const step = kind === 'sqlite' ? sql`${q.stepMs}` : sql`${q.stepMs}::bigint`;
  return sql<{ b: number | string; k: string; min: number; max: number; s: number; n: number | string }>`select ${kind === 'sqlite' ? sql`cast((bucket - ${from}) / ${step} as integer)` : sql`(bucket - ${from}) / ${step}`} as b, point as k,
      min(min) as min, max(max) as max, sum(sum) as s, sum(count) as n
    from ${t}${kind === 'sqlite' ? sql.raw(` indexed by ${level.table}_device_bucket`) : sql``} where device = ${q.device} and point in (${points}) and bucket >= ${from} and bucket < ${kind === 'sqlite' ? sql`${q.to}` : sql`${q.to}::bigint`}
    group by b, k order by b`;
}

export async function rollupBuckets(database: Database, level: RollupLevel, q: BucketQuery): Promise<Record<string, BucketStat[]>> {
  const series: Record<string, BucketStat[]> = Object.fromEntries(q.points.map((p) => [p, []]));
  if (!q.points.length) return series;
  const rows = (await rollupStatement(database.kind, level, q).execute(database.db)).rows;
  for (const r of rows) {
    const n = Number(r.n);
    series[r.k]?.push({ t: q.from + Number(r.b) * q.stepMs, min: Number(r.min), max: Number(r.max), mean: Number(r.s) / n, count: n });
  }
  return series;
}
