import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';
import { ROLLUP_LEVELS } from './rollups.ts';

/**
 * 0019 (SQLite only): the tables every batch of readings updates become WITHOUT ROWID tables
 * (docs/architecture.md#ingest): the row lives in its primary-key B-tree, so an upsert writes one
 * B-tree where a rowid table wrote the table, its primary-key index and any other index.
 * - the rollups: key (device, bucket, point), which also serves the history query (device = ?,
 *   bucket range, point in ...) and the retention's deletes by (device, bucket); the secondary
 *   (device, bucket) index goes.
 * - device_state: key (device).
 * Each table is rebuilt with a copy of its rows, inside one transaction. PostgreSQL keeps its tables
 * (heap plus indexes, fillfactor 70 since 0017): nothing to do there.
 */
const ROLLUP_COLUMNS = 'device text not null, point text not null, bucket bigint not null, min double precision not null, '
  + 'max double precision not null, sum double precision not null, count bigint not null, last double precision not null, last_ts bigint not null';

const STATE_COLUMNS = 'device text not null, gateway text not null, last_seq bigint not null, last_ts bigint not null, '
  + 'last_values text not null, last_quality text not null, last_seen bigint not null';

const TABLES: { name: string; columns: string; key: string }[] = [
  ...ROLLUP_LEVELS.map((l) => ({ name: l.table, columns: ROLLUP_COLUMNS, key: 'device, bucket, point' })),
  { name: 'device_state', columns: STATE_COLUMNS, key: 'device' },
];

const isPostgres = (db: Kysely<any>): boolean => db.getExecutor().adapter instanceof PostgresAdapter;

/** Creates `name` as a WITHOUT ROWID table with the rows of the table it replaces (its indexes go with it). */
async function rebuild(db: Kysely<any>, t: { name: string; columns: string; key: string }, rowid: boolean): Promise<void> {
  const next = `${t.name}_0019`;
  const names = t.columns.split(', ').map((c) => c.split(' ')[0]).join(', ');
  await sql.raw(`create table ${next} (${t.columns}, primary key (${t.key}))${rowid ? '' : ' without rowid'}`).execute(db);
  await sql.raw(`insert into ${next} (${names}) select ${names} from ${t.name} order by ${t.key}`).execute(db);
  await sql.raw(`drop table ${t.name}`).execute(db);
  await sql.raw(`alter table ${next} rename to ${t.name}`).execute(db);
}

export const withoutRowidMigration: Migration = {
  async up(db: Kysely<any>) {
    if (isPostgres(db)) return;
    await db.transaction().execute(async (trx) => {
      for (const t of TABLES) await rebuild(trx, t, false);
    });
  },
  async down(db: Kysely<any>) {
    if (isPostgres(db)) return;
    await db.transaction().execute(async (trx) => {
      for (const t of TABLES) await rebuild(trx, { ...t, key: t.name === 'device_state' ? 'device' : 'device, point, bucket' }, true);
      for (const l of ROLLUP_LEVELS) await sql.raw(`create index ${l.table}_device_bucket on ${l.table} (device, bucket)`).execute(trx);
    });
  },
};
