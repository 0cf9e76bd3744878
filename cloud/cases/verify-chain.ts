import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { historyFields, type HistoryRow } from './history.ts';
import { firstFault, headFault, type ChainFaultKind } from '../../lib/hash-chain.ts';

/**
 * Recomputes every case's history chain (docs/architecture.md#case-history-chain) and names, per case,
 * the first row that breaks it: `altered` (its content no longer gives its hash), `broken-link` (its
 * prev_hash is not the previous row's hash: a row before it deleted, or it inserted out of place),
 * `deleted-tail` (the case's head is not its last row's hash), `orphan` (rows of a case that does not exist).
 */
export type { ChainFaultKind };
export interface ChainFault { caseId: string; seq: number | null; kind: ChainFaultKind; message: string }
export interface ChainReport { ok: boolean; cases: number; rows: number; faults: ChainFault[] }

const BATCH = 200;

export async function verifyHistoryChains(db: Kysely<DB>): Promise<ChainReport> {
  const cases = await db.selectFrom('cases').select(['id', 'history_head']).orderBy('id').execute();
  const faults: ChainFault[] = [];
  let rows = 0;
  for (let i = 0; i < cases.length; i += BATCH) {
    const batch = cases.slice(i, i + BATCH);
    const all = await db.selectFrom('case_history').selectAll().where('case_id', 'in', batch.map((c) => c.id))
      .orderBy('case_id').orderBy('seq').execute();
    rows += all.length;
    const byCase = new Map<string, HistoryRow[]>();
    for (const r of all) (byCase.get(r.case_id) ?? byCase.set(r.case_id, []).get(r.case_id)!).push(r);
    for (const c of batch) {
      const f = verifyCase(c.id, c.history_head, byCase.get(c.id) ?? []);
      if (f) faults.push(f);
    }
  }
  const orphans = await db.selectFrom('case_history').select('case_id').distinct()
    .where('case_id', 'not in', db.selectFrom('cases').select('id')).orderBy('case_id').execute();
  for (const o of orphans) faults.push({ caseId: o.case_id, seq: null, kind: 'orphan', message: `history rows of case ${o.case_id}, which does not exist` });
  return { ok: faults.length === 0, cases: cases.length, rows, faults };
}

/** The first fault of one case's chain, or undefined when it holds. */
export function verifyCase(caseId: string, head: string | null, rows: HistoryRow[]): ChainFault | undefined {
  const { fault, last } = firstFault(rows, historyFields);
  const f = fault ?? headFault(head, last, rows.length ? Number(rows[rows.length - 1]!.seq) : null);
  return f && { caseId, ...f, message: f.kind === 'deleted-tail' ? f.message.replace('the head', "the case's head") : f.message };
}
