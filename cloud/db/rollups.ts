import { sql, type Kysely } from 'kysely';
import type { Database } from './database.ts';
import { columnArrays, prepared } from './prepared.ts';
import type { DB, ReadingRollupTable } from './schema.ts';

/**
 * Rollups of readings (docs/architecture.md#rollups): per device, point and bucket of a level
 * (1 minute, 1 hour), the min, max, sum, count and the last value with its measurement time, of
 * the point's JSON numbers. Maintained inside the batch's write transaction from the readings the
 * batch actually inserted (a duplicate is not counted twice): the batch is folded in memory first,
 * then one upsert per touched bucket (SQLite: a statement prepared once, run per row; PostgreSQL:
 * INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT DO UPDATE, a named prepared statement
 * per level). The upsert's conflict clause holds on both engines (CASE, not min()/least()).
 */

export const ROLLUP_LEVELS = [
  { name: 'minute', table: 'reading_rollups_1m', ms: 60_000 },
  { name: 'hour', table: 'reading_rollups_1h', ms: 3_600_000 },
] as const;
export type RollupLevel = (typeof ROLLUP_LEVELS)[number];
export type RollupTable = RollupLevel['table'];

export type RollupRow = ReadingRollupTable;

/** What a stored reading contributes: its device, measurement time and values (only JSON numbers count). */
export interface RolledReading { device: string; ts: number; values: Record<string, unknown> }

/** Rows per PostgreSQL statement. */
const PG_CHUNK = 1000;

/**
 * Folds readings into one row per (device, point, bucket) of the level, as upserting them one by one would.
 * One map entry per (device, bucket) holding its points' rows: a key string per reading, not per value.
 * Rows come out grouped by device and bucket, near the SQLite key order (device, bucket, point).
 */
export function foldRollups(readings: readonly RolledReading[], levelMs: number): RollupRow[] {
  const acc = new Map<string, Map<string, RollupRow>>();
  for (const r of readings) {
    const bucket = Math.floor(r.ts / levelMs) * levelMs;
    let points: Map<string, RollupRow> | undefined;
    for (const point in r.values) {
      const v = r.values[point];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (!points) {
        const key = `${r.device}\u0000${bucket}`;
        points = acc.get(key);
        if (!points) acc.set(key, points = new Map());
      }
      const a = points.get(point);
      if (!a) {
        const row: RollupRow = { device: r.device, point, bucket, min: v, max: v, sum: v, count: 1, last: v, last_ts: r.ts };
        points.set(point, row);
        continue;
      }
      if (v < a.min) a.min = v;
      if (v > a.max) a.max = v;
      a.sum += v;
      a.count++;
      if (r.ts >= a.last_ts) {
        a.last = v;
        a.last_ts = r.ts;
      }
    }
  }
  const out: RollupRow[] = [];
  for (const points of acc.values()) for (const row of points.values()) out.push(row);
  return out;
}

const upsertTail = (t: string) => ' on conflict (device, point, bucket) do update set '
  + `min = case when excluded.min < ${t}.min then excluded.min else ${t}.min end, `
  + `max = case when excluded.max > ${t}.max then excluded.max else ${t}.max end, `
  + `sum = ${t}.sum + excluded.sum, count = ${t}.count + excluded.count, `
  + `last = case when excluded.last_ts >= ${t}.last_ts then excluded.last else ${t}.last end, `
  + `last_ts = case when excluded.last_ts >= ${t}.last_ts then excluded.last_ts else ${t}.last_ts end`;

const COLUMNS = ['device', 'point', 'bucket', 'min', 'max', 'sum', 'count', 'last', 'last_ts'] as const;
const insertInto = (t: RollupTable) => `insert into ${t} (${COLUMNS.join(', ')}) `;

const sqliteUpsert = (t: RollupTable) => `${insertInto(t)}values (?, ?, ?, ?, ?, ?, ?, ?, ?)${upsertTail(t)}`;

const pgUpsert = (t: RollupTable) => insertInto(t)
  + 'select * from unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[], $6::float8[], $7::bigint[], $8::float8[], $9::bigint[])'
  + upsertTail(t);
const PG_UPSERT = Object.fromEntries(ROLLUP_LEVELS.map((l) => [l.table, pgUpsert(l.table)])) as Record<RollupTable, string>;

const order = (a: RollupRow, b: RollupRow) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.point < b.point ? -1 : a.point > b.point ? 1 : a.bucket - b.bucket);

/** Adds folded rows to a level's table. `database` undefined (the migration's backfill): a multi-row VALUES upsert, on either engine. */
export async function upsertRollups(database: Database | undefined, trx: Kysely<DB>, table: RollupTable, rows: RollupRow[]): Promise<void> {
  if (!rows.length) return;
  if (database?.statement) {
    const st = database.statement(sqliteUpsert(table));
    for (const r of rows) st.run(r.device, r.point, r.bucket, r.min, r.max, r.sum, r.count, r.last, r.last_ts);
    return;
  }
  // In key order, so that two workers upserting overlapping buckets take the row locks in one order.
  const sorted = [...rows].sort(order);
  if (database) {
    for (let i = 0; i < sorted.length; i += PG_CHUNK) await trx.executeQuery(prepared(PG_UPSERT[table], columnArrays(sorted.slice(i, i + PG_CHUNK), COLUMNS)));
    return;
  }
  // The migration's backfill (no Database): a multi-row VALUES upsert with the same conflict clause, on either engine.
  for (let i = 0; i < sorted.length; i += PG_CHUNK) {
    const values = sql.join(sorted.slice(i, i + PG_CHUNK).map((r) => sql`(${sql.join(COLUMNS.map((c) => r[c]))})`));
    await sql`${sql.raw(insertInto(table))}values ${values}${sql.raw(upsertTail(table))}`.execute(trx);
  }
}

/** Both levels' rollups of readings just inserted, inside the caller's write transaction. */
export async function recordRollups(database: Database | undefined, trx: Kysely<DB>, readings: readonly RolledReading[]): Promise<void> {
  if (!readings.length) return;
  for (const level of ROLLUP_LEVELS) await upsertRollups(database, trx, level.table, foldRollups(readings, level.ms));
}
