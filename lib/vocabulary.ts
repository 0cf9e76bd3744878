import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';

/**
 * The project's small vocabularies, each defined once (docs/domain.md): import the list, the
 * type and the TypeBox schema from here; never spell the literals again elsewhere.
 */

function literals<T extends string>(values: readonly T[], opts: Record<string, unknown> = {}): TUnion<TLiteral<T>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)), opts);
}

/** Alarm and case severity, least to most severe. */
export const SEVERITIES = ['info', 'minor', 'major', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const SeverityT = literals(SEVERITIES);
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

/**
 * Case class: `urgent` hazards run on continuous hours and are capped at URGENT_CAP_HOURS;
 * `routine` on the work calendar; `device-health` goes to the maintainer and keeps its normal
 * period in emergency mode (docs/domain.md, the categories table).
 */
export const CASE_CLASSES = ['urgent', 'routine', 'device-health'] as const;
export type CaseClass = (typeof CASE_CLASSES)[number];
export const CaseClassT = literals(CASE_CLASSES);
/** Lower is more pressing. */
export const classRank = (c: CaseClass): number => CASE_CLASSES.indexOf(c);

/** The states of a case (GB/T 30428.8; the state machine is cloud/workflow.ts, docs/domain.md#the-case). */
export const CASE_STATES = ['registered', 'dispatched', 'accepted', 'handled', 'deferred', 'closed', 'void'] as const;
export type CaseState = (typeof CASE_STATES)[number];
/** States in which a case still runs against its deadline (reminders, escalation, overdue). */
export const RUNNING_STATES: readonly CaseState[] = ['registered', 'dispatched', 'accepted'];
/**
 * States in which a case is over; every other state is open. The partial unique indexes of the
 * released migrations spell this list in SQL (cloud/db/migrations.ts, OPEN_CASE_PREDICATE).
 */
export const FINAL_STATES: readonly CaseState[] = ['closed', 'void'];
/** Does the case still run against its deadline? */
export const isRunning = (state: string): boolean => (RUNNING_STATES as readonly string[]).includes(state);
/** Is the case over (closed or void)? */
export const isFinal = (state: string): boolean => (FINAL_STATES as readonly string[]).includes(state);

/**
 * Where a case came from: a sensor breach, an inspector (巡查员) on patrol, the hotline (an operator
 * registers a call), a citizen's report accepted by an operator (docs/domain.md#cases-from-people).
 */
export const CASE_SOURCES = ['sensor', 'inspector', 'hotline', 'citizen'] as const;
export type CaseSource = (typeof CASE_SOURCES)[number];
export const CaseSourceT = literals(CASE_SOURCES);

/** A citizen report (Open311) waits to be accepted (受理) or refused (cloud/open311/reports.ts). */
export const REPORT_STATES = ['pending', 'accepted', 'refused'] as const;
export type ReportState = (typeof REPORT_STATES)[number];

/** A catalogue category's kind (GB/T 30428.2): 部件 a component (an asset), 事件 an event (cloud/catalogue/). */
export const CATEGORY_KINDS = ['component', 'event'] as const;
export type CategoryKind = (typeof CATEGORY_KINDS)[number];
export const CategoryKindT = literals(CATEGORY_KINDS);

/** The city's mode (docs/domain.md, emergency mode). */
export const CITY_MODES = ['normal', 'emergency'] as const;
export type CityMode = (typeof CITY_MODES)[number];
export const CityModeT = literals(CITY_MODES);

/** Emergency response levels, lowest (IV) to highest (I) (docs/domain.md#emergency-mode). */
export const RESPONSE_LEVELS = ['IV', 'III', 'II', 'I'] as const;
export type ResponseLevel = (typeof RESPONSE_LEVELS)[number];

/** An edge gateway's poll mode; the cloud puts every gateway in `fast` in emergency mode. */
export const POLL_MODES = ['normal', 'fast'] as const;
export type PollMode = (typeof POLL_MODES)[number];
export const PollModeT = literals(POLL_MODES);

/** A device as the operator's console shows it: normal, an alarm active, silent past its no-data rule, its gateway offline. */
export const DEVICE_STATUSES = ['normal', 'alarm', 'silent', 'offline'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];
export const DeviceStatusT = literals(DEVICE_STATUSES);

/** Poll interval the gateways switch to in emergency mode unless configured otherwise. */
export const DEFAULT_FAST_POLL_MS = 250;

/** No urgent case may be due later than this after registration (the Zhuhai rule). */
export const URGENT_CAP_HOURS = 12;
/** In emergency mode every hazard case (not device health) is due within this. */
export const EMERGENCY_CAP_HOURS = 12;

export type { Static };

/** What the credential log (cloud/audit/credential-log.ts) records changes of: sign-in users, API tokens, Open311 client apps' keys. */
export const CREDENTIAL_SUBJECTS = ['user', 'token', 'open311-key'] as const;
export type CredentialSubject = (typeof CREDENTIAL_SUBJECTS)[number];
export const CredentialSubjectT = literals(CREDENTIAL_SUBJECTS);
/**
 * Credential changes: create; password (set, enabling a disabled user); rehash (stored under newer
 * scrypt parameters at sign-in); role (role or unit changed); disable; revoke (a token).
 */
export const CREDENTIAL_ACTIONS = ['create', 'password', 'rehash', 'role', 'disable', 'revoke'] as const;
export type CredentialAction = (typeof CREDENTIAL_ACTIONS)[number];
export const CredentialActionT = literals(CREDENTIAL_ACTIONS);

/** Where a case notification goes (flows/flows/notifications.json): webhook, WeCom robot, DingTalk robot, HTTP SMS gateway. */
export const NOTIFICATION_CHANNELS = ['webhook', 'wecom', 'dingtalk', 'sms'] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];
export const NotificationChannelT = literals(NOTIFICATION_CHANNELS);
/** A notification was sent (2xx, and errcode 0 for the robots) or failed. */
export const NOTIFICATION_OUTCOMES = ['sent', 'failed'] as const;
export type NotificationOutcome = (typeof NOTIFICATION_OUTCOMES)[number];
export const NotificationOutcomeT = literals(NOTIFICATION_OUTCOMES);
