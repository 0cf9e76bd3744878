import type { Generated } from 'kysely';
import type { CitizenReportsTable, Open311KeysTable } from '../open311/migration.ts';
import type { SettingsTable } from '../evaluation/settings.ts';
import type { ConfigCurrentTable, ConfigLogTable } from '../config/migration.ts';
import type { RegistryLogTable } from '../registry/log.ts';
import type { RegistryBusesTable, RegistryDevicesTable, RegistryDistrictsTable, RegistryGatewaysTable, RegistryMetaTable, RegistryUnitsTable } from '../registry/migration.ts';

/**
 * Kysely table types. Timestamps are epoch milliseconds (bigint in PostgreSQL, integer in SQLite;
 * the PostgreSQL pool parses int8 to number). JSON is stored as text. Flags are integers 0/1.
 */

export interface ReadingsTable {
  gateway: string;
  /** The edge's stream identity ('' for edges that send none); the key is (gateway, stream, device, seq). */
  stream: string;
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

/** A rollup bucket of one device's point (cloud/db/rollups.ts): `bucket` is its start (epoch ms, a multiple of the level). */
export interface ReadingRollupTable {
  device: string;
  point: string;
  bucket: number;
  min: number;
  max: number;
  sum: number;
  count: number;
  /** The value with the greatest measurement time in the bucket, and that time. */
  last: number;
  last_ts: number;
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
  /** Mode epoch of the emergency period the case belongs to (migration 0003). */
  emergency_epoch: number | null;
  breach_count: number;
  /** The breaching value as JSON text (number, boolean or string). */
  last_value: string;
  threshold_id: string;
  point: string;
  lat: number;
  lon: number;
  address: string | null;
  component_code: string;
  /** Hazards that share this key join one open case (0002). */
  merge_key: string;
  /** JSON array of the hazards joined in this case, first one first. */
  hazards: string;
  /** JSON array of sub-deadlines `{ name, due }` (absolute epoch ms). */
  milestones: string;
  grid: string | null;
  dispatched_at: number | null;
  accepted_at: number | null;
  handled_at: number | null;
  closed_at: number | null;
  /** While deferred: the state to resume. */
  resume_state: string | null;
  rework_count: number;
  extension_count: number;
  /** 0 crew, 1 the unit's duty leader, 2 the command centre. */
  escalation_level: number;
  reminded_at: number | null;
  escalated_at: number | null;
  /** A crew's pending extension request as JSON `{ reason, until, at, by }` (0007), or null. */
  extension_request: string | null;
  /** The hash of the case's last history row (0009; cloud/cases/history.ts), null before its first. */
  history_head: string | null;
  /** Where the case came from (0010; lib/vocabulary.ts CASE_SOURCES). */
  source: string;
  /** Catalogue category code (GB/T 30428.2 minor class; cloud/catalogue/), null for sensor cases before 0010. */
  category: string | null;
  /** The actor who registered a person's case (`user:NAME`, `token:ID`); null for sensor cases. */
  reporter: string | null;
  /** 1: an inspector fixed it on the spot (自查自纠), registered and closed in one step. */
  self_corrected: number;
  /** County code (6 digits) of the component code or grid code. */
  district: string | null;
}

/** Action ids applied (0007): a resent action with the same id is answered, not applied again. */
export interface CaseActionsTable {
  id: string;
  case_id: string;
  action: string;
  /** The principal's actor. */
  actor: string;
  at: number;
}

/** Photos, content-addressed: id is the sha256 hex of the bytes (0007). */
export interface PhotosTable {
  id: string;
  type: string;
  size: number;
  /** EXIF DateTimeOriginal as an instant, when the photo has one. */
  taken_at: number | null;
  lat: number | null;
  lon: number | null;
  uploaded_at: number;
  by: string;
}

/** Which case holds which photo, at which stage (the action it came with, or `upload`), with its flags (JSON array). */
export interface CasePhotosTable {
  case_id: string;
  photo_id: string;
  stage: string;
  flags: string;
  at: number;
  by: string;
}

export interface AlarmsTable {
  id: string;
  device: string;
  hazard: string;
  rule_id: string;
  severity: string;
  class: string;
  point: string | null;
  value: string | null;
  raised_at: number;
  cleared_at: number | null;
  acked_at: number | null;
  acked_by: string | null;
  case_id: string | null;
  /** `cloud` (the cloud's rules) or `edge` (an edge alarm raised it; migration 0005). */
  origin: Generated<string>;
}

/** Every edge alarm received, once per (gateway, stream, device, seq) (migration 0005). */
export interface EdgeAlarmsTable {
  gateway: string;
  stream: string;
  device: string;
  seq: number;
  /** When the edge published it. */
  ts: number;
  received_at: number;
  rule_id: string;
  hazard: string;
  /** 1 raised, 0 clear again. */
  active: number;
  /** The value as JSON text. */
  value: string;
  historical: number;
  alarm_id: string | null;
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
  reason: string | null;
  /** JSON array of evidence references (photo URLs, file ids). */
  evidence: string | null;
  /** JSON object: e.g. an extension's old and new deadline and its approver. */
  details: string | null;
  /** The previous row's hash (null for a case's first row; cloud/cases/history.ts). */
  prev_hash: Generated<string | null>;
  /** sha256 over this row's fields and prev_hash. */
  hash: Generated<string | null>;
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

/** People who sign in to the web application (migration 0006, cloud/users.ts). */
export interface UsersTable {
  id: string;
  username: string;
  role: string;
  /** Set for crew only: the unit whose cases they see. */
  unit: string | null;
  /** `scrypt$N$r$p$salt$hash` (base64url): the parameters travel with the hash so they can change. */
  password_hash: string;
  created_at: number;
  password_changed_at: number;
  disabled_at: number | null;
}

/** Sign-in sessions (migration 0006, cloud/sessions.ts); the cookie value itself is never stored. */
export interface SessionsTable {
  /** sha256 hex of the cookie value. */
  id_hash: string;
  user_id: string;
  created_at: number;
  /** Refreshed on use (at most once a minute); idle expiry counts from it. */
  last_seen_at: number;
  /** Absolute expiry. */
  expires_at: number;
  revoked_at: number | null;
}

/** Emergency mode (migration 0003, cloud/emergency/migration.ts): the one state row. */
export interface EmergencyStateTable {
  id: number;
  mode: string;
  level: string | null;
  since: number;
  actor: string;
  reason: string;
  source: string;
  /** JSON array of the CAP alert identifiers that hold the mode. */
  alerts_json: string;
  epoch: number;
}

/** Append-only audit of every switch (and hold) of the mode. */
export interface EmergencyLogTable {
  seq: number;
  epoch: number;
  at: number;
  action: string;
  mode: string;
  level: string | null;
  actor: string;
  role: string;
  reason: string;
  alert_id: string | null;
  /** The previous row's hash (null for the first; one chain, cloud/audit/chain.ts, migration 0011). */
  prev_hash: Generated<string | null>;
  /** sha256 over this row's fields and prev_hash. */
  hash: Generated<string | null>;
}

/** Append-only, hash-chained: every change of a user, an API token or an Open311 key (migration 0011, cloud/audit/credential-log.ts). */
export interface CredentialLogTable {
  seq: number;
  at: number;
  /** `user`, `token` or `open311-key` (CREDENTIAL_SUBJECTS). */
  subject_kind: string;
  /** A user's name, a token's or an Open311 key's id. */
  subject: string;
  action: string;
  actor: string;
  /** JSON object: role, unit, a key's app name (never a secret or its hash). */
  details: string | null;
  prev_hash: string | null;
  hash: string;
}

/** The head (last row's hash) of each single-chain log: `emergency_log`, `credential_log`. */
export interface AuditHeadsTable {
  chain: string;
  head: string | null;
}

/** CAP alerts received, one per sender and identifier (CAP 1.2 section 3.2.1). */
export interface CapAlertsTable {
  sender: string;
  identifier: string;
  sent: number;
  status: string;
  msg_type: string;
  /** The policy's decision as JSON text (with the warning's expiry when it entered the mode). */
  decision: string;
  received_at: number;
}

export interface DB {
  readings: ReadingsTable;
  reading_rollups_1m: ReadingRollupTable;
  reading_rollups_1h: ReadingRollupTable;
  device_state: DeviceStateTable;
  cases: CasesTable;
  case_history: CaseHistoryTable;
  case_counters: CaseCountersTable;
  api_tokens: ApiTokensTable;
  users: UsersTable;
  sessions: SessionsTable;
  alarms: AlarmsTable;
  edge_alarms: EdgeAlarmsTable;
  emergency_state: EmergencyStateTable;
  emergency_log: EmergencyLogTable;
  credential_log: CredentialLogTable;
  audit_heads: AuditHeadsTable;
  cap_alerts: CapAlertsTable;
  case_actions: CaseActionsTable;
  photos: PhotosTable;
  case_photos: CasePhotosTable;
  open311_keys: Open311KeysTable;
  citizen_reports: CitizenReportsTable;
  settings: SettingsTable;
  config_current: ConfigCurrentTable;
  config_log: ConfigLogTable;
  registry_log: RegistryLogTable;
  registry_districts: RegistryDistrictsTable;
  registry_units: RegistryUnitsTable;
  registry_gateways: RegistryGatewaysTable;
  registry_buses: RegistryBusesTable;
  registry_devices: RegistryDevicesTable;
  registry_meta: RegistryMetaTable;
}
