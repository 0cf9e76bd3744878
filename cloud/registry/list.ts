import { sql, type Kysely, type Selectable } from 'kysely';
import type { RegistryDevicesTable } from './migration.ts';
import type { Rows } from './store.ts';
import { searchPage } from './search.ts';
import type { DB } from '../db/schema.ts';
import { decodeCursor, encodeCursor } from '../http/device-page.ts';
import type { DeviceListQuery } from './schemas.ts';

/**
 * The registry's device list, paged and filtered in SQL (docs/architecture.md#device-registry): in id
 * order after the cursor, each filter on an index of (column, id), q on the lower-case `search` column.
 * The bench (bench/registry.ts) runs the same statement through the driver as its peer.
 */

export type ListFilters = Omit<DeviceListQuery, 'limit' | 'cursor'>;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function filtered(db: Kysely<DB>, f: ListFilters) {
  let q = db.selectFrom('registry_devices').selectAll();
  const status = f.retired === undefined ? (f.status ?? 'active') : f.retired ? 'retired' : 'active';
  if (status === 'active') q = q.where('retired_at', 'is', null);
  else if (status === 'retired') q = q.where('retired_at', 'is not', null);
  if (f.gateway !== undefined) q = q.where('gateway', '=', f.gateway);
  if (f.bus !== undefined) q = q.where('bus', '=', f.bus);
  if (f.district !== undefined) q = q.where('district', '=', f.district);
  if (f.profile !== undefined) q = q.where('profile', '=', f.profile);
  if (f.unit !== undefined) {
    const u = f.unit;
    q = q.where((eb) => eb.or([eb('owner_unit', '=', u), eb('maintainer_unit', '=', u)]));
  }
  if (f.q !== undefined && f.q !== '') q = q.where(sql<boolean>`search like ${`%${escapeLike(f.q.toLowerCase())}%`} escape '\\'`);
  return q;
}

/**
 * One page as a statement: in id order after the cursor, `limit` + 1 rows (the extra one says there is more).
 * A unit filter is owner OR maintainer: two index range scans, each stopping at the page's end, merged
 * (a plain OR would read every device of the unit and sort them).
 */
export function pageQuery(db: Kysely<DB>, query: DeviceListQuery) {
  const { limit, cursor, unit, ...f } = query;
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  const part = (col: 'owner_unit' | 'maintainer_unit') => {
    let q = filtered(db, f).where(col, '=', unit!);
    if (after !== undefined) q = q.where('id', '>', after);
    return q.orderBy('id').limit(limit + 1);
  };
  if (unit === undefined) {
    let q = filtered(db, f);
    if (after !== undefined) q = q.where('id', '>', after);
    return q.orderBy('id').limit(limit + 1);
  }
  return db.selectFrom((eb) => eb.selectFrom(part('owner_unit').as('o')).selectAll()
    .union(eb.selectFrom(part('maintainer_unit').as('m')).selectAll()).as('u'))
    .selectAll().orderBy('id').limit(limit + 1);
}

/** A page of the list; with `q` and the registry's rows, the page's ids are found in memory (search.ts). */
export async function listPage(db: Kysely<DB>, query: DeviceListQuery, memory?: Rows) {
  if (memory && query.q) {
    const { ids, nextCursor } = searchPage(memory, query);
    const got = ids.length ? await db.selectFrom('registry_devices').selectAll().where('id', 'in', ids).execute() : [];
    const byId = new Map(got.map((r) => [r.id, r]));
    return { rows: ids.flatMap((id) => byId.get(id) ?? []), nextCursor };
  }
  const rows = await pageQuery(db, query).execute() as Selectable<RegistryDevicesTable>[];
  const more = rows.length > query.limit;
  const page = more ? rows.slice(0, query.limit) : rows;
  return { rows: page, nextCursor: more ? encodeCursor(page[page.length - 1].id) : null };
}
