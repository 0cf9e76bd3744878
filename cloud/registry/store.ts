import { sql, type Insertable, type Kysely } from 'kysely';
import type { Bus, Device, District, Unit } from '../../devices/district.ts';
import type { Database } from '../db/database.ts';
import type { DB } from '../db/schema.ts';
import type { RegistryBusesTable, RegistryDevicesTable } from './migration.ts';

/**
 * The registry's rows (cloud/registry/migration.ts) to and from District entities: the whole
 * registry is read at start and after another worker's change; a change writes only its rows.
 */

export interface Stamped<T> { value: T; createdAt: number; updatedAt: number; retiredAt: number | null }

/** Everything the registry holds, retired rows too, by id. */
export interface Rows {
  districts: Map<string, Stamped<{ county: string; name: string }>>;
  units: Map<string, Stamped<Unit>>;
  gateways: Map<string, Stamped<{ id: string; name: string }>>;
  buses: Map<string, Stamped<Bus>>;
  devices: Map<string, Stamped<Device>>;
}

export const emptyRows = (): Rows => ({ districts: new Map(), units: new Map(), gateways: new Map(), buses: new Map(), devices: new Map() });

const stamped = <T>(value: T, r: { created_at: number | string; updated_at: number | string; retired_at: number | string | null }): Stamped<T> => ({
  value, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), retiredAt: r.retired_at === null ? null : Number(r.retired_at),
});

/** A device with its keys in one order (the registry's), for comparing and exporting. */
export function canonicalDevice(d: Device): Device {
  const out: Device = {
    id: d.id, profile: d.profile, name: d.name, componentCode: d.componentCode, lat: d.lat, lon: d.lon,
    ownerUnit: d.ownerUnit, maintainerUnit: d.maintainerUnit, bus: d.bus, unitId: d.unitId,
  };
  if (d.address !== undefined) out.address = d.address;
  if (d.grid !== undefined) out.grid = d.grid;
  if (d.pollMs !== undefined) out.pollMs = d.pollMs;
  if (d.scenario !== undefined) out.scenario = d.scenario;
  return out;
}

export function deviceOfRow(r: RegistryDevicesTable): Device {
  const d: Device = {
    id: r.id, profile: r.profile, name: r.name, componentCode: r.component_code, lat: Number(r.lat), lon: Number(r.lon),
    ownerUnit: r.owner_unit, maintainerUnit: r.maintainer_unit, bus: r.bus, unitId: Number(r.unit_id),
  };
  if (r.address !== null) d.address = r.address;
  if (r.grid !== null) d.grid = r.grid;
  if (r.poll_ms !== null) d.pollMs = Number(r.poll_ms);
  if (r.scenario !== null) d.scenario = JSON.parse(r.scenario);
  // The order of the YAML's keys: a device reads the same whether it came from the seed or the database.
  return d;
}

export const searchText = (d: Device): string => [d.id, d.name, d.address ?? '', d.componentCode].join(' ').toLowerCase();

function deviceRow(s: Stamped<Device>, gateway: string): Insertable<RegistryDevicesTable> {
  const d = s.value;
  return {
    id: d.id, profile: d.profile, name: d.name, component_code: d.componentCode, lat: d.lat, lon: d.lon,
    address: d.address ?? null, grid: d.grid ?? null, owner_unit: d.ownerUnit, maintainer_unit: d.maintainerUnit,
    bus: d.bus, unit_id: d.unitId, poll_ms: d.pollMs ?? null, scenario: d.scenario ? JSON.stringify(d.scenario) : null,
    gateway, district: d.componentCode.slice(0, 6), search: searchText(d),
    created_at: s.createdAt, updated_at: s.updatedAt, retired_at: s.retiredAt,
  };
}

function busRow(s: Stamped<Bus>): Insertable<RegistryBusesTable> {
  const b = s.value;
  return { id: b.id, gateway: b.gateway, host: b.host, port: b.port, timeout_ms: b.timeoutMs, created_at: s.createdAt, updated_at: s.updatedAt, retired_at: s.retiredAt };
}

export async function loadRows(db: Kysely<DB>): Promise<Rows> {
  const rows = emptyRows();
  for (const r of await db.selectFrom('registry_districts').selectAll().execute()) rows.districts.set(r.county, stamped({ county: r.county, name: r.name }, r));
  for (const r of await db.selectFrom('registry_units').selectAll().orderBy('created_at').orderBy('id').execute()) {
    rows.units.set(r.id, stamped(r.duty_contact === null ? { id: r.id, name: r.name } : { id: r.id, name: r.name, dutyContact: r.duty_contact }, r));
  }
  for (const r of await db.selectFrom('registry_gateways').selectAll().orderBy('created_at').orderBy('id').execute()) rows.gateways.set(r.id, stamped({ id: r.id, name: r.name }, r));
  for (const r of await db.selectFrom('registry_buses').selectAll().orderBy('created_at').orderBy('id').execute()) {
    rows.buses.set(r.id, stamped({ id: r.id, gateway: r.gateway, host: r.host, port: Number(r.port), timeoutMs: Number(r.timeout_ms) }, r));
  }
  for (const r of await db.selectFrom('registry_devices').selectAll().orderBy('created_at').orderBy('id').execute()) rows.devices.set(r.id, stamped(deviceOfRow(r), r));
  return rows;
}

export async function readVersion(db: Kysely<DB>): Promise<number> {
  const r = await db.selectFrom('registry_meta').select('version').where('id', '=', 1).executeTakeFirst();
  return Number(r?.version ?? 0);
}

/** What one change writes: the rows it touched (inserted or updated), by kind. */
export interface Touched {
  districts: Set<string>; units: Set<string>; gateways: Set<string>; buses: Set<string>; devices: Set<string>;
}
export const noneTouched = (): Touched => ({ districts: new Set(), units: new Set(), gateways: new Set(), buses: new Set(), devices: new Set() });

/** Rows per INSERT statement (within both engines' bound-parameter limits). */
const CHUNK = 500;

async function upsert<T extends keyof DB & `registry_${string}`>(trx: Kysely<DB>, table: T, key: string, rows: Insertable<DB[T]>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK) as any[];
    const cols = Object.keys(chunk[0]).filter((c) => c !== key && c !== 'created_at');
    await (trx.insertInto(table) as any).values(chunk)
      .onConflict((oc: any) => oc.column(key).doUpdateSet(Object.fromEntries(cols.map((c) => [c, sql.ref(`excluded.${c}`)]))))
      .execute();
  }
}

/**
 * Writes the touched rows and bumps the version, in one transaction, only if the database is still at
 * `expected` (another worker's change in between: false, nothing written; the caller reloads and retries).
 */
export async function writeChange(database: Database, rows: Rows, touched: Touched, expected: number, at: number,
  log?: (trx: Kysely<DB>, version: number) => Promise<void>): Promise<{ ok: boolean; version: number }> {
  return database.write(async (trx) => {
    const bumped = await trx.updateTable('registry_meta').set({ version: sql`version + 1`, changed_at: at })
      .where('id', '=', 1).where('version', '=', expected).returning('version').executeTakeFirst();
    if (!bumped) return { ok: false, version: expected };
    const pick = <V>(m: Map<string, Stamped<V>>, ids: Set<string>) => [...ids].map((id) => m.get(id)!).filter(Boolean);
    const st = (s: Stamped<unknown>) => ({ created_at: s.createdAt, updated_at: s.updatedAt, retired_at: s.retiredAt });
    const districts = pick(rows.districts, touched.districts).map((s) => ({ county: s.value.county, name: s.value.name, ...st(s) }));
    if (districts.length) await upsert(trx, 'registry_districts', 'county', districts);
    const units = pick(rows.units, touched.units).map((s) => ({ id: s.value.id, name: s.value.name, duty_contact: s.value.dutyContact ?? null, ...st(s) }));
    if (units.length) await upsert(trx, 'registry_units', 'id', units);
    const gateways = pick(rows.gateways, touched.gateways).map((s) => ({ id: s.value.id, name: s.value.name, ...st(s) }));
    if (gateways.length) await upsert(trx, 'registry_gateways', 'id', gateways);
    const buses = pick(rows.buses, touched.buses).map(busRow);
    if (buses.length) await upsert(trx, 'registry_buses', 'id', buses);
    // Devices retired in this change first: their Modbus slot is free for a device the same change places there.
    const devs = pick(rows.devices, touched.devices).map((s) => deviceRow(s, rows.buses.get(s.value.bus)?.value.gateway ?? ''));
    const order = (r: Insertable<RegistryDevicesTable>) => (r.retired_at === null ? 1 : 0);
    devs.sort((a, b) => order(a) - order(b));
    if (devs.length) {
      // A device that changes bus or unit id: its old slot is released before any new one is taken.
      const moving = devs.filter((r) => r.retired_at === null).map((r) => r.id);
      for (let i = 0; i < moving.length; i += CHUNK) {
        await trx.updateTable('registry_devices').set({ unit_id: sql`-unit_id - 1000` }).where('id', 'in', moving.slice(i, i + CHUNK)).where('retired_at', 'is', null).execute();
      }
      await upsert(trx, 'registry_devices', 'id', devs);
    }
    // The audit of the change (cloud/registry/log.ts), in its transaction: no change without its entry.
    if (log) await log(trx, Number(bumped.version));
    return { ok: true, version: Number(bumped.version) };
  });
}

/** The district a seed names, for a registry with no district yet. */
export const seedDistrict = (d: District) => ({ county: d.county, name: d.name });
