import type { Kysely, Selectable } from 'kysely';
import type { CredentialAction, CredentialSubject } from '../../lib/vocabulary.ts';
import type { CredentialLogTable, DB } from '../db/schema.ts';
import { appendToLog, type LogChain } from './chain.ts';

/**
 * The credential log (docs/architecture.md#audit-chains): every change of a sign-in user, an API token or
 * an Open311 key (who, what, when, for which subject), append-only and hash-chained. Never the secret
 * or its hash: details carry only role, unit or a key's app name.
 */

export type CredentialLogRow = Selectable<CredentialLogTable>;

/** The hashed fields, in this order (never reorder, only add in a new version). */
export const CREDENTIAL_LOG: LogChain<Pick<CredentialLogRow, 'seq' | 'at' | 'subject_kind' | 'subject' | 'action' | 'actor' | 'details'>> = {
  chain: 'credential_log',
  fields: (r) => [Number(r.seq), Number(r.at), r.subject_kind, r.subject, r.action, r.actor, r.details ?? null],
};

export interface CredentialChange {
  at: number;
  subjectKind: CredentialSubject;
  /** A user's name, a token's or an Open311 key's id. */
  subject: string;
  action: CredentialAction;
  actor: string;
  details?: Record<string, unknown>;
}

/** Appends a change inside the caller's write transaction (the one that makes the change). */
export async function logCredentialChange(trx: Kysely<DB>, c: CredentialChange): Promise<void> {
  await appendToLog(trx, CREDENTIAL_LOG, (seq) => ({
    seq, at: c.at, subject_kind: c.subjectKind, subject: c.subject, action: c.action, actor: c.actor,
    details: c.details ? JSON.stringify(c.details) : null,
  }));
}

export { cliActor } from '../../lib/cli-actor.ts';

export interface CredentialLogEntry {
  seq: number; at: number; subjectKind: CredentialSubject; subject: string; action: CredentialAction; actor: string;
  details: Record<string, unknown> | null; hash: string | null;
}

/** Newest first; `before` a seq for the next page. */
export async function listCredentialLog(db: Kysely<DB>, opts: { before?: number; limit: number; subject?: string }): Promise<CredentialLogEntry[]> {
  let q = db.selectFrom('credential_log').selectAll().orderBy('seq', 'desc').limit(opts.limit);
  if (opts.before !== undefined) q = q.where('seq', '<', opts.before);
  if (opts.subject !== undefined) q = q.where('subject', '=', opts.subject);
  return (await q.execute()).map((r) => ({
    seq: Number(r.seq), at: Number(r.at), subjectKind: r.subject_kind as CredentialSubject, subject: r.subject,
    action: r.action as CredentialAction, actor: r.actor, details: r.details ? JSON.parse(r.details) as Record<string, unknown> : null, hash: r.hash,
  }));
}
