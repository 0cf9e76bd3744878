import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { chainHash, firstFault, headFault, type ChainedRow, type LinkFault } from '../../lib/hash-chain.ts';

export { chainHash, firstFault, headFault, type ChainFaultKind, type ChainedRow, type LinkFault } from '../../lib/hash-chain.ts';

/**
 * The database side of the tamper-evident records (docs/architecture.md#audit-chains): the emergency
 * log and the credential log, one chain each with its head in `audit_heads` (case history keeps one
 * chain per case, head on the case row: cloud/cases/history.ts). Hashing and walking: lib/hash-chain.ts.
 */

/** A single-chain log: its table (with seq, prev_hash, hash) and its hashed fields in fixed order. */
export interface LogChain<R> {
  chain: 'emergency_log' | 'credential_log' | 'config_log' | 'registry_log';
  fields(r: R): readonly unknown[];
}

/**
 * Appends one row to a single-chain log inside the caller's write transaction. The head row in
 * `audit_heads` is read by an update, so PostgreSQL holds its lock until the transaction ends:
 * appends to one log are serial (SQLite serialises every write).
 */
export async function appendToLog<R extends { seq: number }>(trx: Kysely<DB>, log: LogChain<R>, make: (seq: number) => R): Promise<R & { prev_hash: string | null; hash: string }> {
  let held = await trx.updateTable('audit_heads').set({ head: sql`head` as any }).where('chain', '=', log.chain).returning('head').executeTakeFirst();
  if (!held) {
    await trx.insertInto('audit_heads').values({ chain: log.chain, head: null }).onConflict((oc) => oc.column('chain').doNothing()).execute();
    held = await trx.updateTable('audit_heads').set({ head: sql`head` as any }).where('chain', '=', log.chain).returning('head').executeTakeFirstOrThrow();
  }
  const last = await (trx as Kysely<any>).selectFrom(log.chain).select(sql<number>`coalesce(max(seq), 0)`.as('n')).executeTakeFirst();
  const r = make(Number(last?.n ?? 0) + 1);
  const prev = held.head ?? null;
  const row = { ...r, prev_hash: prev, hash: chainHash(log.fields(r), prev) };
  await (trx as Kysely<any>).insertInto(log.chain).values(row).execute();
  await trx.updateTable('audit_heads').set({ head: row.hash }).where('chain', '=', log.chain).execute();
  return row;
}

export interface LogReport { ok: boolean; rows: number; head: string | null; fault: LinkFault | null }

const PAGE = 1000;

/** Recomputes a single-chain log page by page; names its first fault. */
export async function verifyLog<R>(db: Kysely<DB>, log: LogChain<R>): Promise<LogReport> {
  const h = await db.selectFrom('audit_heads').select('head').where('chain', '=', log.chain).executeTakeFirst();
  const head = h?.head ?? null;
  let prev: string | null = null;
  let lastSeq: number | null = null;
  let rows = 0;
  for (;;) {
    let q = (db as Kysely<any>).selectFrom(log.chain).selectAll().orderBy('seq').limit(PAGE);
    if (lastSeq !== null) q = q.where('seq', '>', lastSeq);
    const page = await q.execute() as (R & ChainedRow)[];
    if (!page.length) break;
    const { fault, last }: { fault?: LinkFault; last: string | null } = firstFault(page, log.fields, prev);
    if (fault) return { ok: false, rows: rows + page.length, head, fault };
    rows += page.length;
    prev = last;
    lastSeq = Number(page[page.length - 1]!.seq);
  }
  const fault = headFault(head, prev, lastSeq) ?? null;
  return { ok: !fault, rows, head, fault };
}

/** Chains a log's existing rows in seq order and records its head (the migration's backfill). */
export async function backfillLog<R>(db: Kysely<any>, log: LogChain<R>): Promise<void> {
  let prev: string | null = null;
  let after: number | null = null;
  for (;;) {
    let q = db.selectFrom(log.chain).selectAll().orderBy('seq').limit(PAGE);
    if (after !== null) q = q.where('seq', '>', after);
    const page = await q.execute() as (R & ChainedRow)[];
    if (!page.length) break;
    for (const r of page) {
      const hash = chainHash(log.fields(r), prev);
      await db.updateTable(log.chain).set({ prev_hash: prev, hash }).where('seq', '=', r.seq).execute();
      prev = hash;
    }
    after = Number(page[page.length - 1]!.seq);
  }
  await db.deleteFrom('audit_heads').where('chain', '=', log.chain).execute();
  await db.insertInto('audit_heads').values({ chain: log.chain, head: prev }).execute();
}
