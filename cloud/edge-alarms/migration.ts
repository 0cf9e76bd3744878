import type { Kysely, Migration } from 'kysely';

/**
 * 0005: edge alarms count (README.md "Topics", docs/architecture.md). `edge_alarms` keeps every
 * edge alarm once per (gateway, stream, device, seq), the key readings use, so a redelivered alarm
 * changes nothing twice; `alarms.origin` says whether the cloud's rules or an edge raised an alarm.
 */
export const edgeAlarmMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('alarms').addColumn('origin', 'text', (c) => c.notNull().defaultTo('cloud')).execute();
    await db.schema.createTable('edge_alarms')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('stream', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addColumn('rule_id', 'text', (c) => c.notNull())
      .addColumn('hazard', 'text', (c) => c.notNull())
      .addColumn('active', 'integer', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('historical', 'integer', (c) => c.notNull().defaultTo(0))
      /** The cloud alarm it raised, or the active one it joined; null when it changed nothing. */
      .addColumn('alarm_id', 'text')
      .addPrimaryKeyConstraint('edge_alarms_pk', ['gateway', 'stream', 'device', 'seq'])
      .execute();
    await db.schema.createIndex('edge_alarms_device_ts').on('edge_alarms').columns(['device', 'ts']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('edge_alarms').ifExists().execute();
    await db.schema.alterTable('alarms').dropColumn('origin').execute();
  },
};
