import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import type { Database } from './database.ts';
import { columnArrays, prepared } from './prepared.ts';
import type { DB, DeviceStateTable, ReadingsTable } from './schema.ts';

/**
 * The statements of a batch of readings (docs/architecture.md#ingest), inside the caller's write
 * transaction. SQLite: better-sqlite3 statements prepared once (Database.statement) and run per
 * row: a run is a few microseconds, and Kysely's driver would prepare every statement again.
 * PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING the stored
 * keys per chunk, and one device_state upsert the same way: a round trip per statement is what costs
 * there, and a fixed text with one array per column is a named prepared statement (cloud/db/prepared.ts),
 * where a multi-row VALUES list was compiled by Kysely and parsed and planned by PostgreSQL every time.
 */

export type ReadingRow = ReadingsTable;
export type DeviceStateRow = DeviceStateTable;
export type PriorReading = { ts: number; values_json: string; quality: string };

/** Rows per PostgreSQL statement. */
const PG_CHUNK = 1000;

const INSERT_SQLITE = 'insert into readings (gateway, stream, seq, device, ts, received_at, values_json, quality, historical) '
  + 'values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (gateway, stream, device, seq) do nothing';
const PRIOR_SQLITE = 'select ts, values_json, quality from readings where gateway = ? and stream = ? and device = ? and seq = ?';
const INSERT_PG = 'insert into readings (gateway, stream, seq, device, ts, received_at, values_json, quality, historical) '
  + 'select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::integer[]) '
  + 'on conflict (gateway, stream, device, seq) do nothing returning gateway, stream, device, seq';
const PRIOR_PG = 'select r.gateway, r.stream, r.device, r.seq, r.ts, r.values_json, r.quality '
  + 'from unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) as k (gateway, stream, device, seq) '
  + 'join readings r on r.gateway = k.gateway and r.stream = k.stream and r.device = k.device and r.seq = k.seq';
/** Latest values only move forward in measurement time (a replay does not overwrite them). */
const STATE_TAIL = ' on conflict (device) do update set '
  + 'gateway = excluded.gateway, '
  + 'last_seq = case when excluded.last_ts >= device_state.last_ts then excluded.last_seq else device_state.last_seq end, '
  + 'last_values = case when excluded.last_ts >= device_state.last_ts then excluded.last_values else device_state.last_values end, '
  + 'last_quality = case when excluded.last_ts >= device_state.last_ts then excluded.last_quality else device_state.last_quality end, '
  + 'last_ts = case when excluded.last_ts >= device_state.last_ts then excluded.last_ts else device_state.last_ts end, '
  + 'last_seen = case when excluded.last_seen >= device_state.last_seen then excluded.last_seen else device_state.last_seen end';
const STATE_COLUMNS = 'insert into device_state (device, gateway, last_seq, last_ts, last_values, last_quality, last_seen) ';
const STATE_SQLITE = `${STATE_COLUMNS}values (?, ?, ?, ?, ?, ?, ?)${STATE_TAIL}`;
const STATE_PG = `${STATE_COLUMNS}select * from unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])${STATE_TAIL}`;

type Key = { gateway: string; stream: string; device: string; seq: number };

const keyOf = (r: Key): string =>
  `${r.gateway}\u0000${r.stream}\u0000${r.device}\u0000${Number(r.seq)}`;

/** Inserts the rows in order; true where the row was stored, false where its key already was (also earlier in the same batch). */
export async function insertReadings(database: Database, trx: Kysely<DB>, rows: ReadingRow[]): Promise<boolean[]> {
  if (database.statement) {
    const st = database.statement(INSERT_SQLITE);
    return rows.map((r) => st.run(r.gateway, r.stream, r.seq, r.device, r.ts, r.received_at, r.values_json, r.quality, r.historical).changes === 1);
  }
  const keys = rows.map(keyOf);
  // In key order, so that two workers inserting overlapping batches take the index locks in one order.
  const order = keys.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : a - b));
  const returned = new Set<string>();
  for (let i = 0; i < order.length; i += PG_CHUNK) {
    const chunk = order.slice(i, i + PG_CHUNK).map((j) => rows[j]);
    const params = columnArrays(chunk, ['gateway', 'stream', 'seq', 'device', 'ts', 'received_at', 'values_json', 'quality', 'historical']);
    const out = await trx.executeQuery(prepared<Key>(INSERT_PG, params));
    for (const r of out.rows) returned.add(keyOf(r));
  }
  // A key twice in one statement is stored once, from its first row (the sort keeps their order).
  return keys.map((k) => returned.delete(k));
}

/** The stored rows under the keys of readings the insert did not store (redeliveries), in the order given: one query per chunk on PostgreSQL. */
export async function priorReadings(database: Database, trx: Kysely<DB>, rows: ReadingRow[]): Promise<PriorReading[]> {
  if (rows.length === 0) return [];
  if (database.statement) {
    const st = database.statement(PRIOR_SQLITE);
    return rows.map((r) => found(r, st.get(r.gateway, r.stream, r.device, r.seq) as PriorReading | undefined));
  }
  const byKey = new Map<string, PriorReading>();
  for (let i = 0; i < rows.length; i += PG_CHUNK) {
    const params = columnArrays(rows.slice(i, i + PG_CHUNK), ['gateway', 'stream', 'device', 'seq']);
    const out = await trx.executeQuery(prepared<Key & PriorReading>(PRIOR_PG, params));
    for (const p of out.rows) byKey.set(keyOf(p), { ts: p.ts, values_json: p.values_json, quality: p.quality });
  }
  return rows.map((r) => found(r, byKey.get(keyOf(r))));
}

function found(r: ReadingRow, row: PriorReading | undefined): PriorReading {
  if (!row) throw new CsError(CloudErrors.READING_STORE_FAILED, `reading (${r.gateway}, ${r.stream}, ${r.device}, ${r.seq}) was neither stored nor found stored`);
  return { ...row, ts: Number(row.ts) };
}

/** One row per device (the caller keeps the newest of the batch); each moves the stored state only forward in ts. */
export async function upsertDeviceStates(database: Database, trx: Kysely<DB>, rows: DeviceStateRow[]): Promise<void> {
  if (rows.length === 0) return;
  if (database.statement) {
    const st = database.statement(STATE_SQLITE);
    for (const s of rows) st.run(s.device, s.gateway, s.last_seq, s.last_ts, s.last_values, s.last_quality, s.last_seen);
    return;
  }
  const sorted = [...rows].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  for (let i = 0; i < sorted.length; i += PG_CHUNK) {
    const params = columnArrays(sorted.slice(i, i + PG_CHUNK), ['device', 'gateway', 'last_seq', 'last_ts', 'last_values', 'last_quality', 'last_seen']);
    await trx.executeQuery(prepared(STATE_PG, params));
  }
}

/** Folds a stored reading into the batch's newest state of its device, as applying the upserts one by one would. */
export function foldState(latest: Map<string, DeviceStateRow>, s: DeviceStateRow): void {
  const prev = latest.get(s.device);
  if (!prev) return void latest.set(s.device, s);
  const newer = s.last_ts >= prev.last_ts;
  latest.set(s.device, {
    device: s.device,
    gateway: s.gateway,
    last_seq: newer ? s.last_seq : prev.last_seq,
    last_ts: newer ? s.last_ts : prev.last_ts,
    last_values: newer ? s.last_values : prev.last_values,
    last_quality: newer ? s.last_quality : prev.last_quality,
    last_seen: Math.max(s.last_seen, prev.last_seen),
  });
}
