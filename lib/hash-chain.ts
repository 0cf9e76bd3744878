import { createHash } from 'node:crypto';

/**
 * The one hash chain of the tamper-evident records (docs/architecture.md#audit-chains): case history,
 * the emergency log and the credential log in the cloud's database (cloud/audit/chain.ts), the broker's
 * credential log in its data directory (gateway/credential-log.ts). A row's hash is sha256 over the
 * canonical JSON array of its hashed fields, in the order its definition fixes, followed by the
 * previous row's hash (null for the first).
 */

export function chainHash(fields: readonly unknown[], prevHash: string | null): string {
  return createHash('sha256').update(JSON.stringify([...fields, prevHash])).digest('hex');
}

/**
 * `altered`: a row's content no longer gives its hash; `broken-link`: its prev_hash is not the previous
 * row's hash (a row before it deleted, or it inserted out of place); `deleted-tail`: the head is not the
 * last row's hash (rows at the end deleted); `orphan`: history rows of a case that does not exist.
 */
export type ChainFaultKind = 'altered' | 'broken-link' | 'deleted-tail' | 'orphan';
export interface LinkFault { seq: number | null; kind: ChainFaultKind; message: string }

export interface ChainedRow { seq: number | string; prev_hash: string | null; hash: string | null }

/**
 * Walks one chain in order and returns its first fault, or undefined when it holds. `prev` is the hash
 * before the first row given (null at the start), so a long chain can be walked page by page;
 * `last` is the last good row's hash, for `headFault`.
 */
export function firstFault<R extends ChainedRow>(rows: readonly R[], fields: (r: R) => readonly unknown[], prev: string | null = null): { fault?: LinkFault; last: string | null } {
  for (const r of rows) {
    const seq = Number(r.seq);
    if ((r.prev_hash ?? null) !== prev) {
      return { last: prev, fault: { seq, kind: 'broken-link', message: `row ${seq} does not follow ${prev === null ? 'the start of the chain' : 'the row before it'}: a row before it was deleted, or it was inserted out of place` } };
    }
    if (chainHash(fields(r), prev) !== r.hash) return { last: prev, fault: { seq, kind: 'altered', message: `row ${seq} was altered: its content no longer gives its hash` } };
    prev = r.hash;
  }
  return { last: prev };
}

/** The fault when the recorded head is not the last row's hash (`lastSeq`: that row, null when none). */
export function headFault(head: string | null, last: string | null, lastSeq: number | null): LinkFault | undefined {
  if ((head ?? null) === last) return undefined;
  return { seq: lastSeq, kind: 'deleted-tail', message: `the head is not the last row's hash: rows after ${lastSeq === null ? 'the start' : `row ${lastSeq}`} were deleted` };
}

