import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { caseFacts, type CaseFacts, type CaseRecord, type FactRow } from './facts.ts';
import type { Period } from './figures.ts';

/**
 * Reads what the evaluation of a period needs: the cases that can count in it, and their history
 * rows before the period end. Candidates are cases registered before the end and not closed or voided
 * before the start (a superset: which count is decided on history alone, cloud/evaluation/figures.ts).
 */

const CHUNK = 500;

export async function loadFacts(db: Kysely<DB>, p: Period): Promise<CaseFacts[]> {
  const cases = await db.selectFrom('cases').selectAll()
    .where('opened_at', '<', p.to)
    .where((eb) => eb.or([eb('closed_at', 'is', null), eb('closed_at', '>=', p.from)]))
    .orderBy('id').execute() as unknown as CaseRecord[];
  const out: CaseFacts[] = [];
  for (let i = 0; i < cases.length; i += CHUNK) {
    const chunk = cases.slice(i, i + CHUNK);
    const rows = await db.selectFrom('case_history')
      .select(['case_id', 'seq', 'at', 'action', 'actor', 'role', 'from_state', 'to_state', 'details', 'hash'])
      .where('case_id', 'in', chunk.map((c) => c.id)).where('at', '<', p.to)
      .orderBy('case_id').orderBy('seq').execute();
    const byCase = new Map<string, FactRow[]>();
    for (const r of rows) {
      const list = byCase.get(r.case_id) ?? [];
      list.push({ ...r, seq: Number(r.seq), at: Number(r.at) });
      byCase.set(r.case_id, list);
    }
    for (const c of chunk) {
      const f = caseFacts(c, byCase.get(c.id) ?? []);
      if (f) out.push(f);
    }
  }
  return out;
}
