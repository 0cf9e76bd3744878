import { sql, type Kysely, type Selectable } from 'kysely';
import type { CaseHistoryTable, DB } from '../db/schema.ts';
import { chainHash } from '../../lib/hash-chain.ts';

/**
 * A case's append-only history: every change to a case is a row here (docs/domain.md#the-case),
 * each row hashed over its content and the previous row's hash, one chain per case with its head
 * on the case row (docs/architecture.md#case-history-chain).
 */

export type HistoryRow = Selectable<CaseHistoryTable>;

/** The actor of changes the system makes (breaches, the case clock, emergency mode). */
export const SYSTEM_ACTOR = { actor: 'citysteward', role: 'system' } as const;

export type HistoryInput = Pick<HistoryRow, 'at' | 'action' | 'actor' | 'role' | 'from_state' | 'to_state'> &
  Partial<Pick<HistoryRow, 'note' | 'reason' | 'evidence' | 'details'>>;

/** The hashed fields, in this order (the chain's definition: never reorder, only add in a new version). */
export type HashedRow = Pick<HistoryRow, 'case_id' | 'seq' | 'at' | 'action' | 'actor' | 'role' | 'from_state' | 'to_state' | 'note' | 'reason' | 'evidence' | 'details'>;

export const historyFields = (r: HashedRow): unknown[] => [r.case_id, Number(r.seq), Number(r.at), r.action, r.actor, r.role,
  r.from_state ?? null, r.to_state ?? null, r.note ?? null, r.reason ?? null, r.evidence ?? null, r.details ?? null];

/** sha256 (hex) over the canonical JSON array of a row's fields and the previous row's hash (null for the first). */
export const historyHash = (r: HashedRow, prevHash: string | null): string => chainHash(historyFields(r), prevHash);

/**
 * Appends to a case's history inside the caller's write transaction (never updated or deleted): the one
 * writer of case_history. The head is read by an update of the case row, so PostgreSQL holds that row's
 * lock (which the action usually holds already) until the transaction ends: appends to one case are serial.
 */
export async function appendHistory(trx: Kysely<DB>, caseId: string, entries: HistoryInput[]): Promise<void> {
  if (!entries.length) return;
  const head = await trx.updateTable('cases').set({ history_head: sql`history_head` as any }).where('id', '=', caseId)
    .returning('history_head').executeTakeFirst();
  if (!head) throw new Error(`appendHistory: case ${caseId} does not exist`);
  const last = await trx.selectFrom('case_history').select(sql<number>`coalesce(max(seq), 0)`.as('n'))
    .where('case_id', '=', caseId).executeTakeFirst();
  let seq = Number(last?.n ?? 0);
  let prev = head.history_head ?? null;
  const rows = entries.map((e) => {
    const r = { note: null, reason: null, evidence: null, details: null, ...e, case_id: caseId, seq: ++seq };
    const hash = historyHash(r, prev);
    const row = { ...r, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
  await trx.insertInto('case_history').values(rows).execute();
  await trx.updateTable('cases').set({ history_head: prev }).where('id', '=', caseId).execute();
}
