import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { verifyHistoryChains, type ChainReport } from '../cases/verify-chain.ts';
import { verifyLog, type LogReport } from './chain.ts';
import { CREDENTIAL_LOG } from './credential-log.ts';
import { EMERGENCY_LOG } from './emergency-log.ts';
import { CONFIG_LOG } from '../config/store.ts';
import { REGISTRY_LOG } from '../registry/log.ts';

/**
 * Every tamper-evident record recomputed (docs/architecture.md#audit-chains): the case-history chains
 * (top-level cases, rows, faults, as before), the emergency log, the credential log, the configuration log and the registry log.
 */
export interface AuditReport extends ChainReport { emergencyLog: LogReport; credentialLog: LogReport; configLog: LogReport; registryLog: LogReport }

export async function verifyAudit(db: Kysely<DB>): Promise<AuditReport> {
  const history = await verifyHistoryChains(db);
  const emergencyLog = await verifyLog(db, EMERGENCY_LOG);
  const credentialLog = await verifyLog(db, CREDENTIAL_LOG);
  const configLog = await verifyLog(db, CONFIG_LOG);
  const registryLog = await verifyLog(db, REGISTRY_LOG);
  return { ...history, ok: history.ok && emergencyLog.ok && credentialLog.ok && configLog.ok && registryLog.ok, emergencyLog, credentialLog, configLog, registryLog };
}

/**
 * The heads a figure was computed on (for the evaluation report): the case-history heads of the given
 * cases folded into one sha256 over "id:head" lines in id order (every case when none given), and the
 * two logs' heads. Anyone can recompute the digest from the same cases.
 */
export interface AuditHeads { caseHistory: { cases: number; digest: string }; emergencyLog: string | null; credentialLog: string | null }

export async function auditHeads(db: Kysely<DB>, caseIds?: readonly string[]): Promise<AuditHeads> {
  const rows: { id: string; history_head: string | null }[] = [];
  if (!caseIds) rows.push(...await db.selectFrom('cases').select(['id', 'history_head']).execute());
  const ids = [...new Set(caseIds ?? [])];
  for (let i = 0; i < ids.length; i += 500) rows.push(...await db.selectFrom('cases').select(['id', 'history_head']).where('id', 'in', ids.slice(i, i + 500)).execute());
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const digest = createHash('sha256');
  for (const c of rows) digest.update(`${c.id}:${c.history_head ?? ''}\n`);
  const cases = rows.length;
  const heads = new Map((await db.selectFrom('audit_heads').selectAll().execute()).map((h) => [h.chain, h.head]));
  return { caseHistory: { cases, digest: digest.digest('hex') }, emergencyLog: heads.get('emergency_log') ?? null, credentialLog: heads.get('credential_log') ?? null };
}
