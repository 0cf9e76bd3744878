import type { Kysely, Migration } from 'kysely';
import { SYSTEM_ACTOR } from '../cases/history.ts';
import { appendToLog, backfillLog } from './chain.ts';
import { CREDENTIAL_LOG } from './credential-log.ts';
import { EMERGENCY_LOG } from './emergency-log.ts';

/**
 * 0011: the emergency log and credential changes chained (issue 13, docs/architecture.md#audit-chains).
 * Existing emergency-log rows are chained here in seq order. The new credential log starts with what
 * the database holds: each existing user and token's creation, disabling and revocation, in time
 * order, by the system actor, marked `backfilled`.
 */
export const auditChainsMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('emergency_log').addColumn('prev_hash', 'text').execute();
    await db.schema.alterTable('emergency_log').addColumn('hash', 'text').execute();
    await db.schema.createTable('audit_heads')
      .addColumn('chain', 'text', (c) => c.primaryKey())
      .addColumn('head', 'text')
      .execute();
    await db.schema.createTable('credential_log')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('subject_kind', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('details', 'text')
      .addColumn('prev_hash', 'text')
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('credential_log_subject').on('credential_log').columns(['subject', 'seq']).execute();
    await backfillEmergencyLog(db);
    await seedCredentialLog(db);
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('credential_log').execute();
    await db.schema.dropTable('audit_heads').execute();
    await db.schema.alterTable('emergency_log').dropColumn('hash').execute();
    await db.schema.alterTable('emergency_log').dropColumn('prev_hash').execute();
  },
};

/** Chains the emergency log's rows as they are (also run by the tests against live-written rows). */
export const backfillEmergencyLog = (db: Kysely<any>) => backfillLog(db, EMERGENCY_LOG);

async function seedCredentialLog(db: Kysely<any>): Promise<void> {
  type Change = { at: number; subject_kind: string; subject: string; action: string; details: string };
  const changes: Change[] = [];
  const detail = (role: string, unit: string | null) => JSON.stringify({ role, unit, backfilled: true });
  for (const u of await db.selectFrom('users').select(['username', 'role', 'unit', 'created_at', 'disabled_at']).execute()) {
    changes.push({ at: Number(u.created_at), subject_kind: 'user', subject: u.username, action: 'create', details: detail(u.role, u.unit) });
    if (u.disabled_at !== null) changes.push({ at: Number(u.disabled_at), subject_kind: 'user', subject: u.username, action: 'disable', details: JSON.stringify({ backfilled: true }) });
  }
  for (const t of await db.selectFrom('api_tokens').select(['id', 'role', 'unit', 'created_at', 'revoked_at']).execute()) {
    changes.push({ at: Number(t.created_at), subject_kind: 'token', subject: t.id, action: 'create', details: detail(t.role, t.unit) });
    if (t.revoked_at !== null) changes.push({ at: Number(t.revoked_at), subject_kind: 'token', subject: t.id, action: 'revoke', details: JSON.stringify({ backfilled: true }) });
  }
  changes.sort((a, b) => a.at - b.at || a.subject.localeCompare(b.subject) || (a.action === 'create' ? -1 : 1));
  for (const c of changes) await appendToLog(db, CREDENTIAL_LOG, (seq) => ({ seq, ...c, actor: SYSTEM_ACTOR.actor }));
  if (!changes.length) await db.insertInto('audit_heads').values({ chain: 'credential_log', head: null }).execute();
}
