import type { Kysely, Selectable } from 'kysely';
import type { SchemaProblem } from '../../lib/schema.ts';
import { appendToLog, type LogChain } from '../audit/chain.ts';
import type { DB } from '../db/schema.ts';
import type { ConfigLogTable } from './migration.ts';
import type { ConfigKind, ConfigOutcome, ConfigSource } from './kinds.ts';

/**
 * The configuration's tables (migration 0016): the document in force per kind and the audit of
 * changes applied and refused, hash-chained (docs/architecture.md#audit-chains).
 */

export type ConfigLogRow = Selectable<ConfigLogTable>;

/** The hashed fields, in this order (never reorder, only add in a new version). */
export const CONFIG_LOG: LogChain<Pick<ConfigLogRow, 'seq' | 'at' | 'kind' | 'actor' | 'source' | 'outcome' | 'version' | 'summary' | 'before' | 'after' | 'problems'>> = {
  chain: 'config_log',
  fields: (r) => [Number(r.seq), Number(r.at), r.kind, r.actor, r.source, r.outcome, r.version === null ? null : Number(r.version), r.summary, r.before ?? null, r.after ?? null, r.problems ?? null],
};

export interface StoredConfig { kind: ConfigKind; body: unknown; version: number; updatedAt: number; updatedBy: string; fileHash: string | null }

export async function readCurrent(db: Kysely<DB>, kind: ConfigKind): Promise<StoredConfig | undefined> {
  const r = await db.selectFrom('config_current').selectAll().where('kind', '=', kind).executeTakeFirst();
  return r && { kind, body: JSON.parse(r.body), version: Number(r.version), updatedAt: Number(r.updated_at), updatedBy: r.updated_by, fileHash: r.file_hash };
}

/** Every kind's version (the workers' poll: cheap, no bodies). */
export async function readVersions(db: Kysely<DB>): Promise<Map<string, number>> {
  const rows = await db.selectFrom('config_current').select(['kind', 'version']).execute();
  return new Map(rows.map((r) => [r.kind, Number(r.version)]));
}

export interface LogEntry {
  at: number; kind: ConfigKind; actor: string; source: ConfigSource; outcome: ConfigOutcome; version: number | null;
  summary: string; before?: unknown; after?: unknown; problems?: SchemaProblem[];
}

export async function appendConfigLog(trx: Kysely<DB>, e: LogEntry): Promise<void> {
  const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
  await appendToLog(trx, CONFIG_LOG, (seq) => ({
    seq, at: e.at, kind: e.kind, actor: e.actor, source: e.source, outcome: e.outcome, version: e.version,
    summary: e.summary, before: json(e.before), after: json(e.after), problems: json(e.problems),
  }));
}

/**
 * Writes a new version in the caller's transaction, only over `from` (the version read): false when
 * another change came first (nothing written). `from` 0: the first version (insert).
 */
export async function writeVersion(trx: Kysely<DB>, kind: ConfigKind, body: unknown, from: number, at: number, actor: string, fileHash?: string): Promise<boolean> {
  const text = JSON.stringify(body);
  if (from === 0) {
    const r = await trx.insertInto('config_current').values({ kind, body: text, version: 1, updated_at: at, updated_by: actor, file_hash: fileHash ?? null })
      .onConflict((oc) => oc.column('kind').doNothing()).executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
  }
  const r = await trx.updateTable('config_current')
    .set({ body: text, version: from + 1, updated_at: at, updated_by: actor, ...(fileHash !== undefined ? { file_hash: fileHash } : {}) })
    .where('kind', '=', kind).where('version', '=', from).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function setFileHash(trx: Kysely<DB>, kind: ConfigKind, fileHash: string): Promise<void> {
  await trx.updateTable('config_current').set({ file_hash: fileHash }).where('kind', '=', kind).execute();
}

export interface ChangeEntry {
  seq: number; at: number; kind: ConfigKind; actor: string; source: ConfigSource; outcome: ConfigOutcome; version: number | null;
  summary: string; before: unknown; after: unknown; problems: SchemaProblem[] | null; hash: string;
}

/** Newest first; `before` a seq for the next page; `kind` one kind only. */
export async function listChanges(db: Kysely<DB>, opts: { limit: number; before?: number; kind?: ConfigKind }): Promise<ChangeEntry[]> {
  let q = db.selectFrom('config_log').selectAll().orderBy('seq', 'desc').limit(opts.limit);
  if (opts.before !== undefined) q = q.where('seq', '<', opts.before);
  if (opts.kind !== undefined) q = q.where('kind', '=', opts.kind);
  const parse = (t: string | null) => (t === null ? null : JSON.parse(t) as unknown);
  return (await q.execute()).map((r) => ({
    seq: Number(r.seq), at: Number(r.at), kind: r.kind as ConfigKind, actor: r.actor, source: r.source as ConfigSource, outcome: r.outcome as ConfigOutcome,
    version: r.version === null ? null : Number(r.version), summary: r.summary, before: parse(r.before), after: parse(r.after),
    problems: parse(r.problems) as SchemaProblem[] | null, hash: r.hash,
  }));
}
