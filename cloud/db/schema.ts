/**
 * Kysely table types. Timestamps are epoch milliseconds (bigint in PostgreSQL, integer in SQLite;
 * the PostgreSQL pool parses int8 to number). JSON is stored as text. Flags are integers 0/1.
 */

export interface ReadingsTable {
  gateway: string;
  seq: number;
  device: string;
  /** Measurement time reported by the edge. */
  ts: number;
  /** When the cloud stored it (injected clock). */
  received_at: number;
  /** `values` of the reading as JSON text. */
  values_json: string;
  quality: string;
  historical: number;
}

/** Latest state of a device: the newest reading by `ts`, and when anything was last heard from it. */
export interface DeviceStateTable {
  device: string;
  gateway: string;
  last_seq: number;
  last_ts: number;
  last_values: string;
  last_quality: string;
  last_seen: number;
}

export interface CasesTable {
  id: string;
  device: string;
  hazard: string;
  class: string;
  severity: string;
  state: string;
  unit: string;
  title: string;
  description: string;
  opened_at: number;
  updated_at: number;
  deadline_at: number;
  emergency: number;
  breach_count: number;
  /** The breaching value as JSON text (number, boolean or string). */
  last_value: string;
  threshold_id: string;
  point: string;
  lat: number;
  lon: number;
  address: string | null;
  component_code: string;
}

/** Append-only: one row per action on a case, numbered per case. */
export interface CaseHistoryTable {
  case_id: string;
  seq: number;
  at: number;
  action: string;
  actor: string;
  role: string;
  from_state: string | null;
  to_state: string | null;
  note: string | null;
}

/** Per-day counter behind case ids `C-YYYYMMDD-NNNN` (day in Asia/Shanghai). */
export interface CaseCountersTable {
  day: string;
  n: number;
}

export interface ApiTokensTable {
  id: string;
  /** sha256 hex of the token; the token itself is never stored. */
  hash: string;
  role: string;
  unit: string | null;
  created_at: number;
  revoked_at: number | null;
}

export interface DB {
  readings: ReadingsTable;
  device_state: DeviceStateTable;
  cases: CasesTable;
  case_history: CaseHistoryTable;
  case_counters: CaseCountersTable;
  api_tokens: ApiTokensTable;
}
