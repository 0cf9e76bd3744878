import type { Kysely, Migration } from 'kysely';

/**
 * Tables of emergency mode: the current mode (one row), its append-only audit log, and the CAP
 * alerts received (idempotent on sender and identifier, CAP 1.2 section 3.2.1).
 */
export const emergencyMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('emergency_state')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('level', 'text')
      .addColumn('since', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('alerts_json', 'text', (c) => c.notNull())
      .addColumn('epoch', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createTable('emergency_log')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('epoch', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('level', 'text')
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('alert_id', 'text')
      .execute();
    await db.schema.createTable('cap_alerts')
      .addColumn('sender', 'text', (c) => c.notNull())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('sent', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('msg_type', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('received_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('cap_alerts_pk', ['sender', 'identifier'])
      .execute();
    // The emergency period a case belongs to survives the end of the mode (for evaluation).
    await db.schema.alterTable('cases').addColumn('emergency_epoch', 'integer').execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('cases').dropColumn('emergency_epoch').execute();
    await db.schema.dropTable('cap_alerts').execute();
    await db.schema.dropTable('emergency_log').execute();
    await db.schema.dropTable('emergency_state').execute();
  },
};
