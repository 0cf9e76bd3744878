import { sql, type Kysely, type Migration } from 'kysely';

/**
 * 0015: the device registry in the database (README "Device registry", docs/architecture.md#device-registry).
 * Districts (county codes), units, gateways, buses and devices, each with created/updated/retired
 * times: nothing is deleted, a retired row keeps its id so history and cases still name it.
 * `registry_meta` holds one row, the registry's version, bumped by every change: each cloud worker
 * polls it and reloads when another worker changed the registry. Devices carry their gateway and
 * district (derived from the bus and the component code) and a lower-case `search` text for the list's q.
 */
export const registryMigration: Migration = {
  async up(db: Kysely<any>) {
    const stamps = <T extends { addColumn: (...a: any[]) => T }>(t: T): T => t
      .addColumn('created_at', 'bigint', (c: any) => c.notNull())
      .addColumn('updated_at', 'bigint', (c: any) => c.notNull())
      .addColumn('retired_at', 'bigint');
    await stamps(db.schema.createTable('registry_districts')
      .addColumn('county', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())).execute();
    await stamps(db.schema.createTable('registry_units')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('duty_contact', 'text')).execute();
    await stamps(db.schema.createTable('registry_gateways')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())).execute();
    await stamps(db.schema.createTable('registry_buses')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('port', 'integer', (c) => c.notNull())
      .addColumn('timeout_ms', 'integer', (c) => c.notNull())).execute();
    await db.schema.createIndex('registry_buses_gateway').on('registry_buses').columns(['gateway']).execute();
    await stamps(db.schema.createTable('registry_devices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('profile', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('component_code', 'text', (c) => c.notNull())
      .addColumn('lat', 'double precision', (c) => c.notNull())
      .addColumn('lon', 'double precision', (c) => c.notNull())
      .addColumn('address', 'text')
      .addColumn('grid', 'text')
      .addColumn('owner_unit', 'text', (c) => c.notNull())
      .addColumn('maintainer_unit', 'text', (c) => c.notNull())
      .addColumn('bus', 'text', (c) => c.notNull())
      .addColumn('unit_id', 'integer', (c) => c.notNull())
      .addColumn('poll_ms', 'integer')
      .addColumn('scenario', 'text')
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('district', 'text', (c) => c.notNull())
      .addColumn('search', 'text', (c) => c.notNull())).execute();
    // The list's filters, each with the id after it: a filtered page is read in id order and stops at the limit.
    for (const col of ['gateway', 'owner_unit', 'maintainer_unit', 'district', 'profile', 'bus']) {
      await db.schema.createIndex(`registry_devices_${col}`).on('registry_devices').columns([col, 'id']).execute();
    }
    // The retired devices, in id order (a few among many).
    await db.schema.createIndex('registry_devices_retired').on('registry_devices').columns(['id'])
      .where(sql.ref('retired_at'), 'is not', null).execute();
    // One Modbus unit id per bus among the devices in service.
    await db.schema.createIndex('registry_devices_slave').on('registry_devices').columns(['bus', 'unit_id']).unique()
      .where(sql.ref('retired_at'), 'is', null).execute();
    await db.schema.createTable('registry_meta')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('version', 'bigint', (c) => c.notNull())
      .addColumn('changed_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.insertInto('registry_meta').values({ id: 1, version: 0, changed_at: 0 }).execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['registry_meta', 'registry_devices', 'registry_buses', 'registry_gateways', 'registry_units', 'registry_districts']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

interface Stamps { created_at: number; updated_at: number; retired_at: number | null }
export interface RegistryDistrictsTable extends Stamps { county: string; name: string }
export interface RegistryUnitsTable extends Stamps { id: string; name: string; duty_contact: string | null }
export interface RegistryGatewaysTable extends Stamps { id: string; name: string }
export interface RegistryBusesTable extends Stamps { id: string; gateway: string; host: string; port: number; timeout_ms: number }
export interface RegistryDevicesTable extends Stamps {
  id: string; profile: string; name: string; component_code: string; lat: number; lon: number;
  address: string | null; grid: string | null; owner_unit: string; maintainer_unit: string;
  bus: string; unit_id: number; poll_ms: number | null;
  /** The simulator's scenario as JSON text. */
  scenario: string | null;
  /** Derived: the bus's gateway and the component code's county (list filters). */
  gateway: string; district: string;
  /** Derived: lower-case id, name, address and component code (the list's q). */
  search: string;
}
export interface RegistryMetaTable { id: number; version: number; changed_at: number }
