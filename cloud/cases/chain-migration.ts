import { type Kysely, type Migration } from 'kysely';
import { historyHash, type HashedRow } from './history.ts';

/**
 * 0009: the case-history chain (issue 13, docs/architecture.md#case-history-chain): each row's prev_hash
 * and hash, each case's head. Existing rows are chained here, in seq order per case.
 */
export const historyChainMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('case_history').addColumn('prev_hash', 'text').execute();
    await db.schema.alterTable('case_history').addColumn('hash', 'text').execute();
    await db.schema.alterTable('cases').addColumn('history_head', 'text').execute();
    let after: { case_id: string; seq: number } | undefined;
    let prev: { case_id: string; hash: string } | undefined;
    const heads = new Map<string, string>();
    for (;;) {
      let q = db.selectFrom('case_history').selectAll().orderBy('case_id').orderBy('seq').limit(1000);
      if (after) {
        const a = after;
        q = q.where((eb) => eb.or([eb('case_id', '>', a.case_id), eb.and([eb('case_id', '=', a.case_id), eb('seq', '>', a.seq)])]));
      }
      const rows = await q.execute() as HashedRow[];
      if (!rows.length) break;
      for (const r of rows) {
        const prevHash = prev && prev.case_id === r.case_id ? prev.hash : null;
        const hash = historyHash(r, prevHash);
        await db.updateTable('case_history').set({ prev_hash: prevHash, hash }).where('case_id', '=', r.case_id).where('seq', '=', r.seq).execute();
        prev = { case_id: r.case_id, hash };
        heads.set(r.case_id, hash);
      }
      const last = rows[rows.length - 1]!;
      after = { case_id: last.case_id, seq: Number(last.seq) };
    }
    for (const [id, head] of heads) await db.updateTable('cases').set({ history_head: head }).where('id', '=', id).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.alterTable('cases').dropColumn('history_head').execute();
    await db.schema.alterTable('case_history').dropColumn('hash').execute();
    await db.schema.alterTable('case_history').dropColumn('prev_hash').execute();
  },
};
