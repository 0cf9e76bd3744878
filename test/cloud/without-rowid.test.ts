import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { createMigrator } from '../../cloud/db/migrations.ts';
import { insertReadings, upsertDeviceStates, type ReadingRow } from '../../cloud/db/reading-store.ts';
import { recordRollups, ROLLUP_LEVELS, type RolledReading } from '../../cloud/db/rollups.ts';
import { createReadingPruner, DAY_MS, DEFAULT_RETENTION } from '../../cloud/reading-retention.ts';
import { silentLogger } from '../../lib/log.ts';
import { BACKENDS, freshDatabase, type Backend } from './fixtures.ts';

/**
 * Migration 0019 (cloud/db/without-rowid-migration.ts): on SQLite the rollups and device_state become
 * WITHOUT ROWID tables. A database at 0018 holding readings, rollups and device states migrates with
 * every row as it was (and back down); afterwards a batch's upserts fold into the migrated rows as
 * before, and the retention's chunked deletes of old rollups take exactly the rows before the cutoff.
 * On PostgreSQL the migration changes nothing, and the same holds.
 */

const T0 = Date.parse('2026-10-01T00:00:00Z');
const DEVICES = ['XZ-WL-001', 'XZ-WL-002', 'XZ-WL-003'];
const N = 3000;

function batch(from: number, to: number): { rows: ReadingRow[]; rolled: RolledReading[] } {
  const rows: ReadingRow[] = [];
  const rolled: RolledReading[] = [];
  for (let i = from; i < to; i++) {
    // 7 s apart: about two hours, over minutes and hours; a string now and then (not rolled up).
    const ts = T0 + i * 7000;
    const values = { level_m: i % 41 === 0 ? 'n/a' : Math.round(Math.sin(i / 50) * 1000) / 1000, battery_pct: 90 - (i % 9) };
    const device = DEVICES[i % DEVICES.length];
    rows.push({ gateway: 'gw-xz-jida', stream: 's1', seq: i + 1, device, ts, received_at: ts + 5, values_json: JSON.stringify(values), quality: 'good', historical: 0 });
    rolled.push({ device, ts, values });
  }
  return { rows, rolled };
}

async function store(db: Database, b: { rows: ReadingRow[]; rolled: RolledReading[] }): Promise<void> {
  await db.write(async (trx) => {
    await insertReadings(db, trx, b.rows);
    await recordRollups(db, trx, b.rolled);
    const last = new Map(b.rows.map((r) => [r.device, r]));
    await upsertDeviceStates(db, trx, [...last.values()].map((r) => ({
      device: r.device, gateway: r.gateway, last_seq: r.seq, last_ts: r.ts, last_values: r.values_json, last_quality: r.quality, last_seen: r.received_at,
    })));
  });
}

const TEXT = new Set(['device', 'point', 'gateway', 'last_values', 'last_quality']);
/** PostgreSQL gives bigints as strings. */
const num = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, TEXT.has(k) ? v : Number(v)]));

/** Every row of the tables 0019 rebuilds (and the readings), in key order, as plain numbers. */
async function snapshot(db: Database) {
  const rollups: Record<string, unknown[]> = {};
  for (const l of ROLLUP_LEVELS) {
    rollups[l.table] = (await db.db.selectFrom(l.table).selectAll().orderBy('device').orderBy('point').orderBy('bucket').execute()).map(num);
  }
  const states = (await db.db.selectFrom('device_state').selectAll().orderBy('device').execute()).map(num);
  const readings = Number((await db.db.selectFrom('readings').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  return { rollups, states, readings };
}

const sqliteSchema = async (db: Database) =>
  (await sql<{ name: string; sql: string | null }>`select name, sql from sqlite_master where tbl_name in ('reading_rollups_1m', 'reading_rollups_1h', 'device_state')`.execute(db.db)).rows;

describe.each(BACKENDS)('migration 0019 (WITHOUT ROWID on SQLite) on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => { await drop?.(); drop = undefined; });

  it.skipIf(skip)('keeps every reading, rollup and device state; upserts and retention work on the migrated tables', async () => {
    const fresh = await freshDatabase(backend);
    drop = fresh.drop;
    const db = openDatabase(fresh.db);
    try {
      const { error } = await createMigrator(db.db).migrateTo('0018_registry_log');
      if (error) throw error;
      await store(db, batch(0, N / 2));
      await store(db, batch(N / 2, N));
      const before = await snapshot(db);
      expect(before.readings).toBe(N);
      expect(before.rollups.reading_rollups_1m.length).toBeGreaterThan(300);
      expect(before.states).toHaveLength(DEVICES.length);
      if (backend === 'sqlite') expect((await sqliteSchema(db)).map((r) => r.name)).toContain('reading_rollups_1m_device_bucket');

      await db.migrate();
      expect(await snapshot(db)).toEqual(before);
      if (backend === 'sqlite') {
        const schema = await sqliteSchema(db);
        // Only the tables themselves: the (device, bucket) indexes and the rowid tables' key indexes are gone.
        expect(schema.map((r) => r.name).sort()).toEqual(['device_state', 'reading_rollups_1h', 'reading_rollups_1m']);
        for (const r of schema) expect(r.sql).toMatch(/without rowid$/);
        expect(schema.find((r) => r.name === 'reading_rollups_1m')!.sql).toMatch(/primary key \(device, bucket, point\)/);
        expect((await sql<{ integrity_check: string }>`pragma integrity_check`.execute(db.db)).rows).toEqual([{ integrity_check: 'ok' }]);
      }

      // The same readings under another stream fold into the migrated rows: counts and sums double, extremes stay.
      const again = batch(0, N);
      for (const r of again.rows) r.stream = 's2';
      await store(db, again);
      const after = await snapshot(db);
      for (const l of ROLLUP_LEVELS) {
        expect(after.rollups[l.table]).toEqual(before.rollups[l.table].map((r: any) => ({ ...r, count: r.count * 2, sum: expect.closeTo(r.sum * 2, 9) })));
      }
      expect(after.states).toEqual(before.states);

      // Retention: minute buckets that ended before the cutoff go, in chunks of 7 rows, per device; the others stay.
      const now = T0 + 3600_000 + 90 * DAY_MS;
      const cutoff = now - 90 * DAY_MS - 60_000 + 1;
      const minute = after.rollups.reading_rollups_1m as { bucket: number }[];
      const old = minute.filter((r) => r.bucket < cutoff);
      expect(old.length).toBeGreaterThan(100);
      expect(old.length).toBeLessThan(minute.length);
      const pruner = createReadingPruner({ database: db, now: () => now, logger: silentLogger(), policy: { ...DEFAULT_RETENTION, rawDays: 90, minuteDays: 90, pruneChunk: 7 } });
      const counts = await pruner.prune();
      expect(counts.minute).toBe(old.length);
      expect(counts.hour).toBe(0);
      const pruned = await snapshot(db);
      expect(pruned.rollups.reading_rollups_1m).toEqual(minute.filter((r) => r.bucket >= cutoff));
      expect(pruned.rollups.reading_rollups_1h).toEqual(after.rollups.reading_rollups_1h);

      // And back down to 0018: the rowid tables and their indexes again, the rows as they were.
      const down = await createMigrator(db.db).migrateTo('0018_registry_log');
      if (down.error) throw down.error;
      expect(await snapshot(db)).toEqual(pruned);
      if (backend === 'sqlite') expect((await sqliteSchema(db)).map((r) => r.name)).toContain('reading_rollups_1h_device_bucket');
    } finally {
      await db.close();
    }
  }, 120_000);
});
