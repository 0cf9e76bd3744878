import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * The one set of migrations, for SQLite and PostgreSQL alike: plain types only
 * (text, integer, bigint, double precision), epoch-ms timestamps, JSON as text, and a partial
 * unique index whose predicate both engines accept. Never edit a released migration; add one.
 */

/** States in which a case no longer counts as open. */
export const FINAL_STATES = ['closed', 'void'] as const;
/** The predicate of the partial unique index; ON CONFLICT targets must repeat it verbatim. */
export const OPEN_CASE_PREDICATE = sql<boolean>`state not in ('closed', 'void')`;

const m0001: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('readings')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('values_json', 'text', (c) => c.notNull())
      .addColumn('quality', 'text', (c) => c.notNull())
      .addColumn('historical', 'integer', (c) => c.notNull().defaultTo(0))
      // (gateway, seq) is the idempotency key: a replayed reading is stored once.
      .addPrimaryKeyConstraint('readings_pk', ['gateway', 'seq'])
      .execute();
    await db.schema.createIndex('readings_device_ts').on('readings').columns(['device', 'ts']).execute();

    await db.schema.createTable('device_state')
      .addColumn('device', 'text', (c) => c.primaryKey())
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('last_seq', 'bigint', (c) => c.notNull())
      .addColumn('last_ts', 'bigint', (c) => c.notNull())
      .addColumn('last_values', 'text', (c) => c.notNull())
      .addColumn('last_quality', 'text', (c) => c.notNull())
      .addColumn('last_seen', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema.createTable('cases')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('hazard', 'text', (c) => c.notNull())
      .addColumn('class', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('unit', 'text', (c) => c.notNull())
      .addColumn('title', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('opened_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('deadline_at', 'bigint', (c) => c.notNull())
      .addColumn('emergency', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('breach_count', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('last_value', 'text', (c) => c.notNull())
      .addColumn('threshold_id', 'text', (c) => c.notNull())
      .addColumn('point', 'text', (c) => c.notNull())
      .addColumn('lat', 'double precision', (c) => c.notNull())
      .addColumn('lon', 'double precision', (c) => c.notNull())
      .addColumn('address', 'text')
      .addColumn('component_code', 'text', (c) => c.notNull())
      .execute();
    // One open case per (device, hazard), enforced by the database for every worker.
    await db.schema.createIndex('cases_one_open_per_device_hazard').on('cases')
      .columns(['device', 'hazard']).unique().where(OPEN_CASE_PREDICATE).execute();
    await db.schema.createIndex('cases_unit_opened').on('cases').columns(['unit', 'opened_at']).execute();
    await db.schema.createIndex('cases_opened').on('cases').columns(['opened_at', 'id']).execute();
    await db.schema.createIndex('cases_device').on('cases').columns(['device', 'state']).execute();

    await db.schema.createTable('case_history')
      .addColumn('case_id', 'text', (c) => c.notNull().references('cases.id'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('from_state', 'text')
      .addColumn('to_state', 'text')
      .addColumn('note', 'text')
      .addPrimaryKeyConstraint('case_history_pk', ['case_id', 'seq'])
      .execute();

    await db.schema.createTable('case_counters')
      .addColumn('day', 'text', (c) => c.primaryKey())
      .addColumn('n', 'integer', (c) => c.notNull())
      .execute();

    await db.schema.createTable('api_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('unit', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['api_tokens', 'case_counters', 'case_history', 'cases', 'device_state', 'readings']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/** In-code migrations, applied in name order. */
export const migrations: Record<string, Migration> = {
  '0001_spine': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: migrationProvider, migrationTableName: 'cs_migrations', migrationLockTableName: 'cs_migrations_lock' });
}
