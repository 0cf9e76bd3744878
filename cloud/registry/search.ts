import type { Rows } from './store.ts';
import { searchText } from './store.ts';
import type { DeviceListQuery } from './schemas.ts';
import { devicePage } from '../http/device-page.ts';

/**
 * The list's text search (`q`) in memory: a substring of 100,000 devices' search texts is a scan that no
 * B-tree index serves (about 40 ms in SQLite, 60-100 ms in PostgreSQL over the table's rows), while the
 * registry already holds every device. The ids of the page are found here, in id order after the cursor,
 * with every other filter applied; the rows are then read from the database by id.
 */

interface Entry { id: string; search: string; gateway: string; district: string; profile: string; owner: string; maintainer: string; retired: boolean }

const indexes = new WeakMap<Rows['devices'], Entry[]>();

function entriesOf(rows: Rows): Entry[] {
  let e = indexes.get(rows.devices);
  if (e) return e;
  e = [...rows.devices.values()].map((s) => ({
    id: s.value.id, search: searchText(s.value), gateway: rows.buses.get(s.value.bus)?.value.gateway ?? '', district: s.value.componentCode.slice(0, 6),
    profile: s.value.profile, owner: s.value.ownerUnit, maintainer: s.value.maintainerUnit, retired: s.retiredAt !== null,
  })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  indexes.set(rows.devices, e);
  return e;
}

/** The ids of one page of a list query with `q`, and the cursor of the next. */
export function searchPage(rows: Rows, query: DeviceListQuery): { ids: string[]; nextCursor: string | null } {
  const needle = (query.q ?? '').toLowerCase();
  const status = query.retired === undefined ? (query.status ?? 'active') : query.retired ? 'retired' : 'active';
  const keep = (e: Entry) => (status === 'any' || e.retired === (status === 'retired'))
    && (query.gateway === undefined || e.gateway === query.gateway)
    && (query.district === undefined || e.district === query.district)
    && (query.profile === undefined || e.profile === query.profile)
    && (query.unit === undefined || e.owner === query.unit || e.maintainer === query.unit)
    && (query.bus === undefined || rows.devices.get(e.id)?.value.bus === query.bus)
    && e.search.includes(needle);
  const page = devicePage(entriesOf(rows), query.cursor, query.limit, keep);
  return { ids: page.items.map((e) => e.id), nextCursor: page.nextCursor };
}
