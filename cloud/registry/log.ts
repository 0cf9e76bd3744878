import type { Kysely, Migration, Selectable } from 'kysely';
import { appendToLog, type LogChain } from '../audit/chain.ts';
import type { DB } from '../db/schema.ts';
import type { Rows, Stamped, Touched } from './store.ts';

/**
 * 0018: the registry's audit (README "Device registry", docs/architecture.md#audit-chains): every create,
 * update, move and retire of a district, unit, gateway, bus or device, and every import as one entry with
 * its counts: who, what (entity, id, the fields changed in a line people read), the entity before and
 * after, when, and the registry version it made. Written in the transaction of the change, append-only and
 * hash-chained with the other logs (cloud/audit/chain.ts), checked by `citysteward audit verify`.
 * Its own table rather than config_log: config_log's rows are per configuration kind with no entity id to
 * filter by, and GET /api/config/changes lists them all as configuration documents.
 */
export const registryLogMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('registry_log')
      .addColumn('seq', 'integer', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('op', 'text', (c) => c.notNull())
      .addColumn('entity', 'text', (c) => c.notNull())
      .addColumn('entity_id', 'text')
      .addColumn('version', 'bigint', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('before', 'text')
      .addColumn('after', 'text')
      .addColumn('prev_hash', 'text')
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('registry_log_entity').on('registry_log').columns(['entity', 'entity_id', 'seq']).execute();
  },
  async down(db: Kysely<any>) {
    await db.schema.dropTable('registry_log').ifExists().execute();
  },
};

/** Append-only, hash-chained: every registry change (migration 0018). */
export interface RegistryLogTable {
  seq: number; at: number; actor: string;
  /** create, update, move, retire or import. */
  op: string;
  /** district, unit, gateway, bus or device. */
  entity: string;
  /** The entity's id (a district's county code); null for an import. */
  entity_id: string | null;
  /** The registry version the change made. */
  version: number;
  summary: string;
  /** JSON text: the entity with its stamps before (null when created) and after; null for an import. */
  before: string | null;
  after: string | null;
  prev_hash: string | null;
  hash: string;
}

export type RegistryOp = 'create' | 'update' | 'move' | 'retire' | 'import';
export const REGISTRY_OPS: readonly RegistryOp[] = ['create', 'update', 'move', 'retire', 'import'];
export const ENTITY_OF = { districts: 'district', units: 'unit', gateways: 'gateway', buses: 'bus', devices: 'device' } as const;
export type RegistryEntity = (typeof ENTITY_OF)[keyof typeof ENTITY_OF];
export const REGISTRY_ENTITIES = Object.values(ENTITY_OF) as RegistryEntity[];

/** Who made a change and as what (the routes give it to `apply`). */
export interface RegistryAudit { actor: string; op: RegistryOp }

type Row = Selectable<RegistryLogTable>;
/** The hashed fields, in this order (never reorder, only add in a new version). */
export const REGISTRY_LOG: LogChain<Pick<Row, 'seq' | 'at' | 'actor' | 'op' | 'entity' | 'entity_id' | 'version' | 'summary' | 'before' | 'after'>> = {
  chain: 'registry_log',
  fields: (r) => [Number(r.seq), Number(r.at), r.actor, r.op, r.entity, r.entity_id ?? null, Number(r.version), r.summary, r.before ?? null, r.after ?? null],
};

export interface LogEntry { op: RegistryOp; entity: RegistryEntity; entityId: string | null; summary: string; before: unknown; after: unknown }

const show = (v: unknown): string => {
  const t = v === undefined ? '(none)' : JSON.stringify(v);
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
};

/** The fields two values differ in, as `field: old → new` (keys in the after's order, then removed ones). */
export function fieldsChanged(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(after), ...Object.keys(before)])];
  return keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k])).map((k) => `${k}: ${show(before[k])} → ${show(after[k])}`);
}

const stampedJson = (s: Stamped<unknown> | undefined) => s && { ...(s.value as object), createdAt: s.createdAt, updatedAt: s.updatedAt, retiredAt: s.retiredAt };

/** The entries one change makes: one per entity it touched, or one with counts for an import. */
export function entriesOf(audit: RegistryAudit, before: Rows, after: Rows, touch: Touched): LogEntry[] {
  if (audit.op === 'import') {
    let created = 0;
    for (const id of touch.devices) if (!before.devices.has(id)) created++;
    const updated = touch.devices.size - created;
    return [{ op: 'import', entity: 'device', entityId: null, summary: `imported devices: ${created} created, ${updated} updated`, before: null, after: { created, updated } }];
  }
  const out: LogEntry[] = [];
  for (const kind of Object.keys(ENTITY_OF) as (keyof Rows)[]) {
    for (const id of touch[kind]) {
      const was = (before[kind] as Map<string, Stamped<unknown>>).get(id);
      const now = (after[kind] as Map<string, Stamped<unknown>>).get(id)!;
      const entity = ENTITY_OF[kind];
      let summary: string;
      if (!was) summary = `${entity} ${id} created`;
      else if (audit.op === 'retire') summary = `${entity} ${id} retired`;
      else {
        const fields = fieldsChanged(was.value as Record<string, unknown>, now.value as Record<string, unknown>);
        summary = `${entity} ${id} ${audit.op === 'move' ? 'moved' : 'updated'}: ${fields.join('; ') || 'no field changed'}`;
      }
      out.push({ op: audit.op, entity, entityId: id, summary, before: stampedJson(was) ?? null, after: stampedJson(now) });
    }
  }
  return out;
}

export async function appendRegistryLog(trx: Kysely<DB>, at: number, actor: string, version: number, entries: LogEntry[]): Promise<void> {
  for (const e of entries) {
    await appendToLog(trx, REGISTRY_LOG, (seq) => ({
      seq, at, actor, op: e.op, entity: e.entity, entity_id: e.entityId, version, summary: e.summary,
      before: e.before === null ? null : JSON.stringify(e.before), after: e.after === null ? null : JSON.stringify(e.after),
    }));
  }
}

export interface RegistryChange {
  seq: number; at: number; actor: string; op: RegistryOp; entity: RegistryEntity; id: string | null; version: number;
  summary: string; before: unknown; after: unknown; hash: string;
}

/** Newest first; `before` a seq for the next page; `entity` and `id` narrow it. */
export async function listRegistryLog(db: Kysely<DB>, opts: { limit: number; before?: number; entity?: RegistryEntity; id?: string }): Promise<RegistryChange[]> {
  let q = db.selectFrom('registry_log').selectAll().orderBy('seq', 'desc').limit(opts.limit);
  if (opts.before !== undefined) q = q.where('seq', '<', opts.before);
  if (opts.entity !== undefined) q = q.where('entity', '=', opts.entity);
  if (opts.id !== undefined) q = q.where('entity_id', '=', opts.id);
  const parse = (t: string | null) => (t === null ? null : JSON.parse(t) as unknown);
  return (await q.execute()).map((r) => ({
    seq: Number(r.seq), at: Number(r.at), actor: r.actor, op: r.op as RegistryOp, entity: r.entity as RegistryEntity, id: r.entity_id,
    version: Number(r.version), summary: r.summary, before: parse(r.before), after: parse(r.after), hash: r.hash,
  }));
}
