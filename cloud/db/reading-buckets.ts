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
  /** SQLite: read in slices of about this long (default SQLITE_SLICE_MS). */
  sliceMs?: number;
}

export interface BucketStat { t: number; min: number; max: number; mean: number; count: number }

/**
 * The statement (exported for the query-plan test): one row per bucket and point holding a number,
 * for readings from `since` (a bucket boundary at or after `q.from`) to `q.to`; buckets count from `q.from`.
 * Each row's JSON is expanded once (json_each / jsonb_each; on SQLite that is faster than a
 * json_extract per point) and only JSON numbers are kept. SQLite is held to the (device, ts) index:
 * with one device's statistics it may otherwise choose a table scan.
 */
export function bucketStatement(kind: Database['kind'], q: BucketQuery, since = q.from): RawBuilder<{ b: number | string; k: string; min: number; max: number; mean: number; n: number | string }> {
  const points = sql.join(q.points.map((p) => sql`${p}`));
  if (kind === 'sqlite') {
    return sql`select cast((r.ts - ${q.from}) / ${q.stepMs} as integer) as b, j.key as k,
        min(j.value) as min, max(j.value) as max, avg(j.value) as mean, count(*) as n
      from readings r indexed by readings_device_ts, json_each(r.values_json) j
      where r.device = ${q.device} and r.ts >= ${since} and r.ts < ${q.to} and j.type in ('integer', 'real') and j.key in (${points})
      group by b, k order by b`;
  }
  return sql`select (r.ts - ${q.from}::bigint) / ${q.stepMs}::bigint as b, j.key as k,
      min((j.value #>> '{}')::double precision) as min, max((j.value #>> '{}')::double precision) as max,
      avg((j.value #>> '{}')::double precision) as mean, count(*) as n
    from readings r cross join lateral jsonb_each(r.values_json::jsonb) j
    where r.device = ${q.device} and r.ts >= ${since} and r.ts < ${q.to} and jsonb_typeof(j.value) = 'number' and j.key in (${points})
    group by b, k order by b`;
}

/**
 * SQLite runs on the event loop (better-sqlite3 is synchronous): a long span is read in slices of
 * whole buckets covering about this long each, with a yield between them, so ingest and other
 * requests are not held up for the whole query. PostgreSQL answers asynchronously in one statement.
 */
export const SQLITE_SLICE_MS = 6 * 3_600_000;

/** Per point, the buckets that hold at least one of its values, oldest first (`t` = bucket start, ms). */
export async function readingBuckets(database: Database, q: BucketQuery): Promise<Record<string, BucketStat[]>> {
  const series: Record<string, BucketStat[]> = Object.fromEntries(q.points.map((p) => [p, []]));
  if (!q.points.length) return series;
  const sliceMs = database.kind === 'sqlite' ? Math.max(1, Math.floor((q.sliceMs ?? SQLITE_SLICE_MS) / q.stepMs)) * q.stepMs : q.to - q.from;
  for (let start = q.from; start < q.to; start += sliceMs) {
    if (start > q.from) await new Promise((resolve) => setImmediate(resolve));
    // Buckets stay numbered from `q.from`: a slice starts on a bucket boundary.
    const slice = { ...q, to: Math.min(q.to, start + sliceMs) };
    const rows = (await bucketStatement(database.kind, slice, start).execute(database.db)).rows;
    for (const r of rows) {
      series[r.k]?.push({ t: q.from + Number(r.b) * q.stepMs, min: Number(r.min), max: Number(r.max), mean: Number(r.mean), count: Number(r.n) });
    }
  }
  return series;
}
