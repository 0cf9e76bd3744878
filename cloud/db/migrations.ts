import { emergencyMigration } from '../emergency/migration.ts';
import { edgeAlarmMigration } from '../edge-alarms/migration.ts';
import { caseworkMigration } from '../cases/migration.ts';
import { rollupMigration } from './rollups-migration.ts';
import { historyChainMigration } from '../cases/chain-migration.ts';
import { peopleCasesMigration } from '../cases/people-migration.ts';
import { auditChainsMigration } from '../audit/migration.ts';
import { open311Migration } from '../open311/migration.ts';
import { settingsMigration } from '../evaluation/settings.ts';
import { configMigration } from '../config/migration.ts';
import { registryLogMigration } from '../registry/log.ts';
import { registryMigration } from '../registry/migration.ts';
import { hotUpdatesMigration } from './fillfactor-migration.ts';
import { withoutRowidMigration } from './without-rowid-migration.ts';
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * The one set of migrations, for SQLite and PostgreSQL alike: plain types only
 * (text, integer, bigint, double precision), epoch-ms timestamps, JSON as text, and a partial
 * unique index whose predicate both engines accept. Never edit a released migration; add one.
 */

/**
 * The predicate of the partial unique index: not in FINAL_STATES (lib/vocabulary.ts), spelt out
 * because released migrations never change; ON CONFLICT targets must repeat it verbatim
 * (test/cloud/workflow.test.ts holds it to the vocabulary).
 */
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

/**
 * 0002: the case workflow (issue #5). Cases gain a merge key (related hazards at one asset join one
 * case), sub-deadlines, workflow timestamps and counters, escalation state; history gains reason,
 * evidence and details; alarms get a table with one active alarm per (device, hazard).
 */
const m0002: Migration = {
  async up(db: Kysely<any>) {
    const caseColumns: [string, 'text' | 'integer' | 'bigint', string | number | null][] = [
      ['merge_key', 'text', ''],
      ['hazards', 'text', '[]'],
      ['milestones', 'text', '[]'],
      ['grid', 'text', null],
      ['dispatched_at', 'bigint', null],
      ['accepted_at', 'bigint', null],
      ['handled_at', 'bigint', null],
      ['closed_at', 'bigint', null],
      ['resume_state', 'text', null],
      ['rework_count', 'integer', 0],
      ['extension_count', 'integer', 0],
      ['escalation_level', 'integer', 0],
      ['reminded_at', 'bigint', null],
      ['escalated_at', 'bigint', null],
    ];
    for (const [name, type, def] of caseColumns) {
      await db.schema.alterTable('cases').addColumn(name, type, (c) => (def === null ? c : c.notNull().defaultTo(def))).execute();
    }
    await db.updateTable('cases').set({ merge_key: sql`hazard`, hazards: sql`'["' || hazard || '"]'`, dispatched_at: sql`opened_at` }).execute();
    // One open case per (device, merge key): related hazards join one case, and a storm of workers cannot split it.
    await db.schema.createIndex('cases_one_open_per_device_group').on('cases')
      .columns(['device', 'merge_key']).unique().where(OPEN_CASE_PREDICATE).execute();
    await db.schema.createIndex('cases_state_deadline').on('cases').columns(['state', 'deadline_at']).execute();
    await db.schema.createIndex('cases_device_closed').on('cases').columns(['device', 'merge_key', 'closed_at']).execute();

    for (const name of ['reason', 'evidence', 'details']) {
      await db.schema.alterTable('case_history').addColumn(name, 'text').execute();
    }

    await db.schema.createTable('alarms')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('hazard', 'text', (c) => c.notNull())
      .addColumn('rule_id', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull())
      .addColumn('class', 'text', (c) => c.notNull())
      .addColumn('point', 'text')
      .addColumn('value', 'text')
      .addColumn('raised_at', 'bigint', (c) => c.notNull())
      .addColumn('cleared_at', 'bigint')
      .addColumn('acked_at', 'bigint')
      .addColumn('acked_by', 'text')
      .addColumn('case_id', 'text')
      .execute();
    // One active alarm per (device, hazard), for every worker.
    await db.schema.createIndex('alarms_one_active').on('alarms').columns(['device', 'hazard']).unique()
      .where(sql<boolean>`cleared_at is null`).execute();
    await db.schema.createIndex('alarms_case').on('alarms').columns(['case_id']).execute();
    await db.schema.createIndex('alarms_raised').on('alarms').columns(['raised_at', 'id']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('alarms').ifExists().execute();
  },
};

/**
 * 0004: the readings key names the edge's stream (issue #10): (gateway, stream, device, seq). A new
 * edge box or a wiped data directory starts seq again under a new stream, so its readings are no
 * longer dropped as duplicates of the old box's; device in the key keeps a reading of another device
 * that reuses a seq. Rows stored before keep working under the unnamed stream ''. SQLite cannot
 * change a primary key in place, so the table is rebuilt (the same statements on PostgreSQL).
 */
const m0004: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('readings').renameTo('readings_0001').execute();
    await db.schema.createTable('readings')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('stream', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('values_json', 'text', (c) => c.notNull())
      .addColumn('quality', 'text', (c) => c.notNull())
      .addColumn('historical', 'integer', (c) => c.notNull().defaultTo(0))
      .addPrimaryKeyConstraint('readings_stream_pk', ['gateway', 'stream', 'device', 'seq'])
      .execute();
    await sql`insert into readings (gateway, stream, device, seq, ts, received_at, values_json, quality, historical)
      select gateway, '', device, seq, ts, received_at, values_json, quality, historical from readings_0001`.execute(db);
    await db.schema.dropTable('readings_0001').execute();
    await db.schema.createIndex('readings_device_ts').on('readings').columns(['device', 'ts']).execute();
  },
};

/**
 * 0006: people sign in (issue 11): users with a scrypt hash (its parameters stored with it) and
 * sessions keyed by the sha256 of the cookie value (cloud/users.ts, cloud/sessions.ts).
 */
const m0006: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('unit', 'text')
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('password_changed_at', 'bigint', (c) => c.notNull())
      .addColumn('disabled_at', 'bigint')
      .execute();
    await db.schema.createTable('sessions')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').columns(['user_id']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('sessions').ifExists().execute();
    await db.schema.dropTable('users').ifExists().execute();
  },
};

/** In-code migrations, applied in name order. */
export const migrations: Record<string, Migration> = {
  '0001_spine': m0001,
  '0002_workflow': m0002,
  '0003_emergency': emergencyMigration,
  '0004_reading_streams': m0004,
  '0005_edge_alarms': edgeAlarmMigration,
  '0006_users_sessions': m0006,
  '0007_casework': caseworkMigration,
  '0008_reading_rollups': rollupMigration,
  '0009_history_chain': historyChainMigration,
  '0010_people_cases': peopleCasesMigration,
  '0011_audit_chains': auditChainsMigration,
  '0012_open311': open311Migration,
  '0013_settings': settingsMigration,
  '0015_registry': registryMigration,
  '0016_config': configMigration,
  '0017_hot_updates': hotUpdatesMigration,
  '0018_registry_log': registryLogMigration,
  '0019_without_rowid': withoutRowidMigration,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: migrationProvider, migrationTableName: 'cs_migrations', migrationLockTableName: 'cs_migrations_lock' });
}
