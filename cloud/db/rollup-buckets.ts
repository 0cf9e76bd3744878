import { sql } from 'kysely';
import type { Database } from './database.ts';
import { bucketStatement, readingBuckets, type BucketQuery, type BucketStat } from './reading-buckets.ts';
import { ROLLUP_LEVELS, type RollupLevel } from './rollups.ts';

/**
 * Which level answers a bucketed history (docs/architecture.md#rollups): raw rows when the step is
 * under a minute and the span lies within the raw retention; else minute rollups when the step is
 * under an hour (and the span within their retention); else hour rollups. On a rollup level the
 * step is rounded up to a multiple of the level and `from` moved back to a level boundary, so each
 * bucket is a whole number of rollup buckets. A `to` inside a level bucket is kept when the raw rows
 * still reach back to that bucket's start (`tail`: the rollups up to it, the raw rows after); else it
 * is moved on to the boundary. Either way the answer equals a direct aggregate of the raw rows over
 * the returned from, to and stepMs.
 */
export interface HistoryPlan { level: 'raw' | RollupLevel; from: number; to: number; stepMs: number; tail?: number }

/** `keptDays`: how far back each level reaches (the retention policy's days). */
export function planHistory(q: { from: number; to: number; stepMs: number; now: number; maxBuckets: number },
  kept: { rawDays: number; minuteDays: number }): HistoryPlan {
  const reaches = (days: number) => q.from >= q.now - days * 86_400_000;
  const [minute, hour] = ROLLUP_LEVELS;
  if (q.stepMs < minute.ms && reaches(kept.rawDays)) return { level: 'raw', from: q.from, to: q.to, stepMs: q.stepMs };
  const level = q.stepMs < hour.ms && reaches(kept.minuteDays) ? minute : hour;
  const from = Math.floor(q.from / level.ms) * level.ms;
  const tail = Math.floor(q.to / level.ms) * level.ms;
  const keepTo = tail < q.to && tail >= q.now - kept.rawDays * 86_400_000;
  const to = keepTo ? q.to : Math.ceil(q.to / level.ms) * level.ms;
  let stepMs = Math.ceil(q.stepMs / level.ms) * level.ms;
  // Widening the span may add a bucket past the cap: a coarser step then.
  while (Math.ceil((to - from) / stepMs) > q.maxBuckets) stepMs += level.ms;
  return keepTo ? { level, from, to, stepMs, tail } : { level, from, to, stepMs };
}

/** The plan's answer: per point, the buckets that hold at least one value, oldest first. */
export async function historyBuckets(database: Database, plan: HistoryPlan, q: Pick<BucketQuery, 'device' | 'points'>): Promise<Record<string, BucketStat[]>> {
  if (plan.level === 'raw') return readingBuckets(database, { ...q, from: plan.from, to: plan.to, stepMs: plan.stepMs });
  const series = await rollupBuckets(database, plan.level, { ...q, from: plan.from, to: plan.tail ?? plan.to, stepMs: plan.stepMs });
  if (plan.tail === undefined) return series;
  // The raw rows after the last whole level bucket (under one level's worth), folded into their bucket.
  const rows = (await bucketStatement(database.kind, { ...q, from: plan.from, to: plan.to, stepMs: plan.stepMs }, plan.tail).execute(database.db)).rows;
  for (const r of rows) {
    const list = series[r.k];
    if (!list) continue;
    const t = plan.from + Number(r.b) * plan.stepMs;
    const add = { t, min: Number(r.min), max: Number(r.max), mean: Number(r.mean), count: Number(r.n) };
    const last = list[list.length - 1];
    if (!last || last.t !== t) {
      list.push(add);
      continue;
    }
    const count = last.count + add.count;
    list[list.length - 1] = { t, min: Math.min(last.min, add.min), max: Math.max(last.max, add.max), mean: (last.mean * last.count + add.mean * add.count) / count, count };
  }
  return series;
}

/**
 * The statement over a rollup table (exported for the query-plan test); `from` and `stepMs` are multiples
 * of the level. SQLite walks the primary key (device, bucket, point) of its WITHOUT ROWID table (migration 0019);
 * PostgreSQL the (device, bucket) index.
 */
export function rollupStatement(kind: Database['kind'], level: RollupLevel, q: BucketQuery) {
  const t = sql.table(level.table);
  const points = sql.join(q.points.map((p) => sql`${p}`));
  const from = kind === 'sqlite' ? sql`${q.from}` : sql`${q.from}::bigint`;
  const step = kind === 'sqlite' ? sql`${q.stepMs}` : sql`${q.stepMs}::bigint`;
  return sql<{ b: number | string; k: string; min: number; max: number; s: number; n: number | string }>`select ${kind === 'sqlite' ? sql`cast((bucket - ${from}) / ${step} as integer)` : sql`(bucket - ${from}) / ${step}`} as b, point as k,
      min(min) as min, max(max) as max, sum(sum) as s, sum(count) as n
    from ${t} where device = ${q.device} and point in (${points}) and bucket >= ${from} and bucket < ${kind === 'sqlite' ? sql`${q.to}` : sql`${q.to}::bigint`}
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
