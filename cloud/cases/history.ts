import { sql, type Kysely, type Selectable } from 'kysely';
import type { CaseHistoryTable, DB } from '../db/schema.ts';

/** A case's append-only history: every change to a case is a row here (docs/domain.md#the-case). */

export type HistoryRow = Selectable<CaseHistoryTable>;

/** The actor of changes the system makes (breaches, the case clock, emergency mode). */
export const SYSTEM_ACTOR = { actor: 'citysteward', role: 'system' } as const;

export type HistoryInput = Pick<HistoryRow, 'at' | 'action' | 'actor' | 'role' | 'from_state' | 'to_state'> &
  Partial<Pick<HistoryRow, 'note' | 'reason' | 'evidence' | 'details'>>;

/** Appends to a case's history inside the caller's write transaction (never updated or deleted). */
export async function appendHistory(trx: Kysely<DB>, caseId: string, entries: HistoryInput[]): Promise<void> {
  if (!entries.length) return;
  const last = await trx.selectFrom('case_history').select(sql<number>`coalesce(max(seq), 0)`.as('n'))
    .where('case_id', '=', caseId).executeTakeFirst();
  let seq = Number(last?.n ?? 0);
  await trx.insertInto('case_history').values(entries.map((e) => ({
    note: null, reason: null, evidence: null, details: null, ...e, case_id: caseId, seq: ++seq,
  }))).execute();
}
