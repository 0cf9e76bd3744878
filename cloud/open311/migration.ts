import type { Kysely, Migration } from 'kysely';

/**
 * 0012: citizen reports through Open311 GeoReport v2 (issue 13, docs/architecture.md#open311).
 * Client apps' API keys (sha256 of the key, never the key); citizen reports waiting for an operator's
 * acceptance (受理), refused with a reason, or accepted as the case they became.
 */
export const open311Migration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('open311_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createTable('citizen_reports')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('service_code', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('lat', 'double precision')
      .addColumn('lon', 'double precision')
      .addColumn('address_string', 'text')
      .addColumn('address_id', 'text')
      .addColumn('media_url', 'text')
      .addColumn('contact', 'text', (c) => c.notNull())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('requested_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('case_id', 'text')
      .execute();
    await db.schema.createIndex('citizen_reports_requested').on('citizen_reports').columns(['requested_at', 'id']).execute();
    await db.schema.createIndex('citizen_reports_state').on('citizen_reports').columns(['state', 'requested_at']).execute();
    await db.schema.createIndex('citizen_reports_case').on('citizen_reports').columns(['case_id']).execute();
  },
  async down(db: Kysely<any>) {
    for (const t of ['citizen_reports', 'open311_keys']) await db.schema.dropTable(t).ifExists().execute();
  },
};

/** A client app's key (cloud/open311/keys.ts). */
export interface Open311KeysTable {
  id: string;
  name: string;
  /** sha256 hex of the key. */
  hash: string;
  created_at: number;
  revoked_at: number | null;
}

/** A citizen's report (cloud/open311/reports.ts): `state` pending | accepted | refused. */
export interface CitizenReportsTable {
  id: string;
  service_code: string;
  description: string;
  lat: number | null;
  lon: number | null;
  address_string: string | null;
  address_id: string | null;
  media_url: string | null;
  /** JSON `{ email, phone, first_name, last_name, account_id, device_id }` (each optional): shown to operators only. */
  contact: string;
  key_id: string;
  state: string;
  /** The refusal's reason. */
  reason: string | null;
  requested_at: number;
  updated_at: number;
  decided_at: number | null;
  /** The operator's actor. */
  decided_by: string | null;
  /** The case registered on acceptance. */
  case_id: string | null;
}
