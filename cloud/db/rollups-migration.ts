import { sql, type Kysely, type Migration } from 'kysely';
import type { DB } from './schema.ts';
import { recordRollups, ROLLUP_LEVELS, type RolledReading } from './rollups.ts';

/** Raw rows read per page of the backfill: memory stays bounded whatever the table holds. */
export const BACKFILL_PAGE = 20_000;

/**
 * 0008: rollups of readings at 1 minute and 1 hour (cloud/db/rollups.ts, docs/architecture.md#rollups).
 * The readings already stored are rolled up here, in the migration, in pages of BACKFILL_PAGE rows in
 * key order (keyset on the primary key), each folded in memory and upserted like a batch's; what the
 * raw retention prunes later stays in the rollups.
 */
export const rollupMigration: Migration = {
  async up(db: Kysely<any>) {
    for (const level of ROLLUP_LEVELS) {
      await db.schema.createTable(level.table)
        .addColumn('device', 'text', (c) => c.notNull())
        .addColumn('point', 'text', (c) => c.notNull())
        .addColumn('bucket', 'bigint', (c) => c.notNull())
        .addColumn('min', 'double precision', (c) => c.notNull())
        .addColumn('max', 'double precision', (c) => c.notNull())
        .addColumn('sum', 'double precision', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addColumn('last', 'double precision', (c) => c.notNull())
        .addColumn('last_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint(`${level.table}_pk`, ['device', 'point', 'bucket'])
        .execute();
      // The retention's deletes go by (device, bucket) whatever the point.
      await db.schema.createIndex(`${level.table}_device_bucket`).on(level.table).columns(['device', 'bucket']).execute();
    }
    await backfill(db as Kysely<DB>);
  },
  async down(db: Kysely<any>) {
    for (const level of ROLLUP_LEVELS) await db.schema.dropTable(level.table).ifExists().execute();
  },
};

async function backfill(db: Kysely<DB>): Promise<void> {
  let after: { gateway: string; stream: string; device: string; seq: number } | undefined;
  for (;;) {
    let q = db.selectFrom('readings').select(['gateway', 'stream', 'device', 'seq', 'ts', 'values_json']);
    if (after) q = q.where(sql<boolean>`(gateway, stream, device, seq) > (${after.gateway}, ${after.stream}, ${after.device}, ${after.seq})`);
    const rows = await q.orderBy('gateway').orderBy('stream').orderBy('device').orderBy('seq').limit(BACKFILL_PAGE).execute();
    if (!rows.length) return;
    const readings: RolledReading[] = [];
    for (const r of rows) {
      let values: unknown;
      try {
        values = JSON.parse(r.values_json);
      } catch {
        continue;
      }
      if (values && typeof values === 'object') readings.push({ device: r.device, ts: Number(r.ts), values: values as Record<string, unknown> });
    }
    await recordRollups(undefined, db, readings);
    const last = rows[rows.length - 1];
    after = { gateway: last.gateway, stream: last.stream, device: last.device, seq: Number(last.seq) };
    if (rows.length < BACKFILL_PAGE) return;
  }
}
