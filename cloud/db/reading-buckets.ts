import { sql, type RawBuilder } from 'kysely';
import type { Database } from './database.ts';

/**
 * A device's history in equal time buckets, aggregated in the database (min, max, mean and count per
 * numeric point), so a chart of a month of one-second readings receives a few hundred rows, not
 * millions. One pass over the (device, ts) index range (readings_device_ts); a point's value counts
 * only when it is a JSON number (flags and strings are not aggregated). The dialects differ only in
 * how the JSON text is expanded (`bucketStatement`).
 */

export interface BucketQuery {
  device: string;
  from: number;
  to: number;
  stepMs: number;
  /** The numeric points to aggregate (the device profile's). */
  points: readonly string[];
}

export interface BucketStat { t: number; min: number; max: number; mean: number; count: number }

/**
 * The statement (exported for the query-plan test): one row per bucket and point holding a number.
 * Each row's JSON is expanded once (json_each / jsonb_each; on SQLite that is faster than a
 * json_extract per point) and only JSON numbers are kept. SQLite is held to the (device, ts) index:
 * with one device's statistics it may otherwise choose a table scan.
 */
export function bucketStatement(kind: Database['kind'], q: BucketQuery): RawBuilder<{ b: number | string; k: string; min: number; max: number; mean: number; n: number | string }> {
  const points = sql.join(q.points.map((p) => sql`${p}`));
  if (kind === 'sqlite') {
    return sql`select cast((r.ts - ${q.from}) / ${q.stepMs} as integer) as b, j.key as k,
        min(j.value) as min, max(j.value) as max, avg(j.value) as mean, count(*) as n
      from readings r indexed by readings_device_ts, json_each(r.values_json) j
      where r.device = ${q.device} and r.ts >= ${q.from} and r.ts < ${q.to} and j.type in ('integer', 'real') and j.key in (${points})
      group by b, k order by b`;
  }
  return sql`select (r.ts - ${q.from}::bigint) / ${q.stepMs}::bigint as b, j.key as k,
      min((j.value #>> '{}')::double precision) as min, max((j.value #>> '{}')::double precision) as max,
      avg((j.value #>> '{}')::double precision) as mean, count(*) as n
    from readings r cross join lateral jsonb_each(r.values_json::jsonb) j
    where r.device = ${q.device} and r.ts >= ${q.from} and r.ts < ${q.to} and jsonb_typeof(j.value) = 'number' and j.key in (${points})
    group by b, k order by b`;
}

/** Per point, the buckets that hold at least one of its values, oldest first (`t` = bucket start, ms). */
export async function readingBuckets(database: Database, q: BucketQuery): Promise<Record<string, BucketStat[]>> {
  const series: Record<string, BucketStat[]> = Object.fromEntries(q.points.map((p) => [p, []]));
  if (!q.points.length) return series;
  const rows = (await bucketStatement(database.kind, q).execute(database.db)).rows;
  for (const r of rows) {
    series[r.k]?.push({ t: q.from + Number(r.b) * q.stepMs, min: Number(r.min), max: Number(r.max), mean: Number(r.mean), count: Number(r.n) });
  }
  return series;
}
