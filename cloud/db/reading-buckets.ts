import { sql, type RawBuilder } from 'kysely';
import type { Database } from './database.ts';

/**
 * A device's history in equal time buckets, aggregated in the database (min, max, mean and count per
 * numeric point), so a chart of a month of one-second readings reads a few hundred rows, not
 * millions. One pass over the (device, ts) index range (readings_device_ts); each point's value is
 * taken from `values_json` only when it is a JSON number (flags and strings are not aggregated).
 * The one dialect difference, reading a number out of the JSON text, is `numberAt` below.
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

/** JSON path of a point key for SQLite's json functions (keys are profile identifiers; quoted anyway). */
const sqlitePath = (key: string) => `$."${key.replace(/"/g, '')}"`;

/** The value of `point` in the row's JSON when it is a number, else NULL: the dialect switch. */
function numberAt(kind: Database['kind'], point: string): RawBuilder<number | null> {
  if (kind === 'sqlite') {
    const p = sqlitePath(point);
    return sql<number | null>`case when json_type(values_json, ${p}) in ('integer', 'real') then json_extract(values_json, ${p}) end`;
  }
  return sql<number | null>`case when jsonb_typeof(v.j -> ${point}) = 'number' then (v.j ->> ${point})::double precision end`;
}

/** The statement (exported for the query-plan test): one row per non-empty bucket, columns per point. */
export function bucketStatement(kind: Database['kind'], q: BucketQuery): RawBuilder<Record<string, unknown>> {
  const cols = q.points.map((p, i) => sql`${numberAt(kind, p)} as ${sql.ref(`p${i}`)}`);
  const aggs = q.points.map((_, i) => {
    const c = sql.ref(`p${i}`);
    return sql`min(${c}) as ${sql.ref(`min${i}`)}, max(${c}) as ${sql.ref(`max${i}`)}, avg(${c}) as ${sql.ref(`mean${i}`)}, count(${c}) as ${sql.ref(`n${i}`)}`;
  });
  const bucket = kind === 'sqlite'
    ? sql`cast((ts - ${q.from}) / ${q.stepMs} as integer)`
    : sql`(ts - ${q.from}::bigint) / ${q.stepMs}::bigint`;
  // PostgreSQL parses each row's JSON once (lateral); SQLite caches the parse between its json_ calls.
  const source = kind === 'sqlite' ? sql`readings` : sql`readings cross join lateral (select values_json::jsonb as j) v`;
  return sql<Record<string, unknown>>`select b, ${sql.join(aggs)} from (
    select ${bucket} as b, ${sql.join(cols)} from ${source}
    where device = ${q.device} and ts >= ${q.from} and ts < ${q.to}
  ) x group by b order by b`;
}

/** Per point, the buckets that hold at least one of its values, oldest first (`t` = bucket start, ms). */
export async function readingBuckets(database: Database, q: BucketQuery): Promise<Record<string, BucketStat[]>> {
  const series: Record<string, BucketStat[]> = Object.fromEntries(q.points.map((p) => [p, []]));
  if (!q.points.length) return series;
  const rows = (await bucketStatement(database.kind, q).execute(database.db)).rows;
  for (const r of rows) {
    const t = q.from + Number(r.b) * q.stepMs;
    q.points.forEach((p, i) => {
      const count = Number(r[`n${i}`]);
      if (count > 0) series[p].push({ t, min: Number(r[`min${i}`]), max: Number(r[`max${i}`]), mean: Number(r[`mean${i}`]), count });
    });
  }
  return series;
}
