import { Type, type Static } from '@sinclair/typebox';
import { OUTBOX_MAX_AGE_MS } from './retention.ts';
import { createHash } from 'node:crypto';
import { check, type SchemaProblem } from './schema.ts';
import { ID_PATTERN } from './topics.ts';
import { DEFAULT_FAST_POLL_MS } from './vocabulary.ts';
import { profileRefProblem, unknownPointProblem, type Profile } from '../devices/profile.ts';
import { checkRuleSet, RuleSet } from '../devices/rules.ts';

/**
 * The config of one edge gateway: who it is on the broker, and which Modbus buses and devices it polls.
 * A bus is one Modbus link: a TCP endpoint (one connection per host and port, docs/architecture.md#modbus-and-its-physical-limits),
 * a serial port, or a serial server's TCP port, serving several unit ids. A device's poll interval is
 * its own `pollMs`, else the gateway's `pollMs`. Every addition has a default, so configs of the first
 * edge issue load unchanged. Documented in README.md "Edge gateway".
 *
 * The schema lives in lib/ because the cloud writes edge config files for the gateways it provisions
 * (cloud/provision/); the edge loads them (edge/config.ts).
 */

const Id = Type.String({ pattern: ID_PATTERN });

/** The largest command payload an edge reads (edge/commands.ts); a larger one is ignored unread, unacknowledged. */
export const COMMAND_MAX_BYTES = 64 * 1024;
/** The most buses and devices one `set-devices` command carries (edge/live-config.ts SetDevicesArgs). */
export const SET_DEVICES_MAX_BUSES = 64;
export const SET_DEVICES_MAX_DEVICES = 500;

export const EdgeMqtt = Type.Object({
  /** Broker URL, e.g. `mqtt://127.0.0.1:1884`. */
  url: Type.String({ minLength: 1 }),
  /** Further brokers of the same cluster (shared Redis), tried in turn after `url` when a connection is lost: failover. */
  urls: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 16 })),
  username: Type.String({ minLength: 1 }),
  password: Type.String(),
  keepaliveS: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
}, { additionalProperties: false });
export type EdgeMqtt = Static<typeof EdgeMqtt>;

export const EdgeBus = Type.Object({
  id: Id,
  /** `tcp` (Modbus TCP), `rtu` (a serial port), `rtu-over-tcp` (RTU frames through a serial server's TCP port). */
  type: Type.Union([Type.Literal('tcp'), Type.Literal('rtu'), Type.Literal('rtu-over-tcp')], { default: 'tcp' }),
  host: Type.String({ minLength: 1, default: '127.0.0.1' }),
  /** Required for `tcp` and `rtu-over-tcp`. */
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  /** Serial device for `rtu`, e.g. /dev/ttyUSB0 or /dev/serial/by-id/... */
  path: Type.Optional(Type.String({ minLength: 1 })),
  /** Serial line settings for `rtu`; defaults 9600 8N1 (Modbus over Serial Line 2.5.1 asks for even parity; many sensors ship 8N1). */
  baudRate: Type.Optional(Type.Integer({ minimum: 300, maximum: 921_600 })),
  parity: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')])),
  stopBits: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2)])),
  /** Lock the serial port against other processes (default true). */
  lock: Type.Optional(Type.Boolean()),
  /** Per-request timeout; also bounds the connect. */
  timeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
  /** Silence before each request; default 3.5 character times on `rtu` (1.75 ms above 19,200 baud), 0 otherwise. */
  interRequestDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  /** Wait after a failed open or a dropped link before the next open; default the timeout. */
  reopenMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 600_000 })),
}, { additionalProperties: false });
export type EdgeBus = Static<typeof EdgeBus>;

export const EdgeDevice = Type.Object({
  id: Id,
  /** A profile id (devices/profiles). */
  profile: Type.String({ minLength: 1 }),
  /** A bus id of this config. */
  bus: Id,
  unitId: Type.Integer({ minimum: 1, maximum: 255 }),
  pollMs: Type.Optional(Type.Integer({ minimum: 100 })),
  /** Report by exception: a point is reported when it moved at least this far since it was last reported. */
  deadbands: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }), Type.Number({ minimum: 0 }))),
  /** Overrides the gateway's reporting.heartbeatMs for this device. */
  heartbeatMs: Type.Optional(Type.Integer({ minimum: 100 })),
  /** Overrides the gateway's maxGap for this device. */
  maxGap: Type.Optional(Type.Integer({ minimum: 0, maximum: 124 })),
}, { additionalProperties: false });
export type EdgeDevice = Static<typeof EdgeDevice>;

export const EdgeReporting = Type.Object({
  /** `poll`: every poll is published; `exception`: only a change beyond a deadband, a quality change, or the heartbeat. */
  mode: Type.Union([Type.Literal('poll'), Type.Literal('exception')], { default: 'poll' }),
  /** In `exception` mode a device is reported at least this often. */
  heartbeatMs: Type.Integer({ minimum: 100, default: 300_000 }),
  /** Default deadband of numeric points (devices[].deadbands per point). */
  deadband: Type.Number({ minimum: 0, default: 0 }),
}, { additionalProperties: false });

export const EdgeBreaker = Type.Object({
  /** Consecutive faults that open a slave's breaker. */
  failures: Type.Integer({ minimum: 1, default: 3 }),
  /** First wait before a probe; doubles after each failed probe up to maxBackoffMs. */
  backoffMs: Type.Integer({ minimum: 10, default: 2000 }),
  maxBackoffMs: Type.Integer({ minimum: 10, default: 60_000 }),
}, { additionalProperties: false });

export const EdgeOutbox = Type.Object({
  /** `sqlite`: a WAL database in the data dir, written before publishing; `memory`: tests only. */
  kind: Type.Union([Type.Literal('sqlite'), Type.Literal('memory')], { default: 'sqlite' }),
  /** Readings held at most; then the drop policy applies (counted, never silent). */
  maxEntries: Type.Integer({ minimum: 1, default: 500_000 }),
  /** `drop-oldest` keeps the newest readings; `drop-newest` refuses new ones and keeps the backlog intact. */
  dropPolicy: Type.Union([Type.Literal('drop-oldest'), Type.Literal('drop-newest')], { default: 'drop-oldest' }),
  /** SQLite synchronous: `full` survives a power cut, `normal` a process crash only (fewer flash writes). */
  sync: Type.Union([Type.Literal('full'), Type.Literal('normal')], { default: 'full' }),
  /** Publishes awaiting their PUBACK at once. */
  inflight: Type.Integer({ minimum: 1, maximum: 1000, default: 64 }),
  /**
   * Retention: an entry held longer is dropped, counted (`outbox.expired` in health) and logged; the
   * cloud accepts readings a day older than this default (lib/retention.ts), so it refuses none the edge replays.
   */
  maxAgeMs: Type.Integer({ minimum: 60_000, default: OUTBOX_MAX_AGE_MS }),
}, { additionalProperties: false });

export const EdgeFastMode = Type.Object({
  /** Poll interval of every device in fast (emergency) mode, when set-mode gives none (lib/vocabulary.ts). */
  pollMs: Type.Integer({ minimum: 100, default: DEFAULT_FAST_POLL_MS }),
  /** Heartbeat in fast mode, when set-mode gives none. */
  heartbeatMs: Type.Integer({ minimum: 100, default: 5000 }),
}, { additionalProperties: false });

export const EdgeAlarms = Type.Object({
  /** An `urgent` threshold rule without its own `holdMs` must hold this long before the edge raises an alarm (passing vehicles). */
  debounceMs: Type.Integer({ minimum: 0, default: 2000 }),
  enabled: Type.Boolean({ default: true }),
}, { additionalProperties: false });

/** The optional local HTTP port: GET /metrics (Prometheus) and GET /healthz (README "Edge gateway"). */
export const EdgeHttp = Type.Object({
  /** 0 lets the system choose (tests). */
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  /** Loopback by default: the metrics are for a local scraper or an SSH tunnel, not the street. */
  host: Type.String({ minLength: 1, default: '127.0.0.1' }),
}, { additionalProperties: false });

export const EdgeConfig = Type.Object({
  gateway: Id,
  mqtt: EdgeMqtt,
  /** A directory of the user's own device profiles (relative to this file); `--profiles` overrides it. */
  profiles: Type.Optional(Type.String({ minLength: 1 })),
  pollMs: Type.Integer({ minimum: 100, default: 1000 }),
  /** Largest run of unused registers the planner reads through to merge two reads (0: never). */
  maxGap: Type.Integer({ minimum: 0, maximum: 124, default: 0 }),
  reporting: Type.Object(EdgeReporting.properties, { additionalProperties: false, default: {} }),
  breaker: Type.Object(EdgeBreaker.properties, { additionalProperties: false, default: {} }),
  outbox: Type.Object(EdgeOutbox.properties, { additionalProperties: false, default: {} }),
  fast: Type.Object(EdgeFastMode.properties, { additionalProperties: false, default: {} }),
  alarms: Type.Object(EdgeAlarms.properties, { additionalProperties: false, default: {} }),
  /**
   * The rule set of the edge's local alarms: a rule-set file (relative to this config file) or the
   * rule set inline; the defaults of devices/rules.ts (the cloud's defaults too) when omitted.
   * Point the cloud's `rules` at the same file (README.md "Rules").
   */
  rules: Type.Optional(Type.Union([Type.String({ minLength: 1 }), RuleSet])),
  /** Health on cs/v1/{gw}/health every healthMs (0: off). */
  healthMs: Type.Integer({ minimum: 0, default: 30_000 }),
  /** Off unless given. */
  http: Type.Optional(EdgeHttp),
  /**
   * The revision of `buses` and `devices` in a config the cloud wrote (a gateway created through the API):
   * a `set-devices` command with a higher one replaces them while the edge runs (edge/live-config.ts).
   * Absent in a config written by hand.
   */
  revision: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  /** Empty for a gateway just created, whose devices come later by `set-devices`. */
  buses: Type.Array(EdgeBus),
  devices: Type.Array(EdgeDevice),
}, { additionalProperties: false });
export type EdgeConfig = Static<typeof EdgeConfig>;

type Defaulted<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;
/** An edge config as written (a file, a test, the demo): every key with a default may be left out. */
export type EdgeConfigInput = Defaulted<Omit<EdgeConfig, 'buses' | 'reporting' | 'breaker' | 'outbox' | 'fast' | 'alarms' | 'http'>, 'pollMs' | 'maxGap' | 'healthMs' | 'revision'> & {
  buses: Defaulted<EdgeBus, 'type' | 'host' | 'timeoutMs'>[];
  reporting?: Partial<EdgeConfig['reporting']>;
  breaker?: Partial<EdgeConfig['breaker']>;
  outbox?: Partial<EdgeConfig['outbox']>;
  fast?: Partial<EdgeConfig['fast']>;
  alarms?: Partial<EdgeConfig['alarms']>;
  http?: { port: number; host?: string };
};

/** What the schema cannot check: references to profiles and buses, unique ids, unique slaves and endpoints. */
export function crossCheckEdgeConfig(cfg: EdgeConfig, profiles: Map<string, Profile>): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  [cfg.mqtt.url, ...(cfg.mqtt.urls ?? [])].forEach((url, i) => {
    const key = i === 0 ? 'mqtt.url' : `mqtt.urls[${i - 1}]`;
    if (!/^(mqtts?|tcp|ssl|wss?):\/\/[^/]+/.test(url)) problems.push({ key, message: `is not a broker URL (mqtt://host:port or mqtts://host:port): "${url}"` });
  });
  const buses = new Map<string, number>();
  const endpoints = new Map<string, string>();
  cfg.buses.forEach((b, i) => {
    if (buses.has(b.id)) problems.push({ key: `buses[${i}].id`, message: `duplicate bus id "${b.id}"` });
    buses.set(b.id, i);
    if (b.type === 'rtu' && !b.path) problems.push({ key: `buses[${i}].path`, message: 'is required for an rtu bus (the serial device)' });
    if (b.type !== 'rtu' && b.port === undefined) problems.push({ key: `buses[${i}].port`, message: `is required for a ${b.type} bus` });
    const ep = b.type === 'rtu' ? `serial ${b.path}` : `${b.host}:${b.port}`;
    const other = endpoints.get(ep);
    if (other) problems.push({ key: `buses[${i}].port`, message: `endpoint ${ep} is already bus "${other}": one connection per host and port, put its devices on that bus` });
    else endpoints.set(ep, b.id);
  });
  if (cfg.rules !== undefined && typeof cfg.rules !== 'string') problems.push(...checkRuleSet(cfg.rules as RuleSet, profiles, 'rules', deviceKinds(cfg)));
  const ids = new Set<string>();
  const slaves = new Map<string, string>();
  cfg.devices.forEach((d, i) => {
    const at = `devices[${i}]`;
    if (ids.has(d.id)) problems.push({ key: `${at}.id`, message: `duplicate device id "${d.id}"` });
    ids.add(d.id);
    const bad = profileRefProblem(profiles, d.profile);
    if (bad) problems.push({ key: `${at}.profile`, message: bad });
    const profile = profiles.get(d.profile);
    // A deadband names a point of the device's profile; a misspelt one would never apply.
    if (profile) for (const k of Object.keys(d.deadbands ?? {})) {
      const missing = unknownPointProblem(profile, `${at}.deadbands.${k}`, k);
      if (missing) problems.push(missing);
    }
    if (!buses.has(d.bus)) {
      problems.push({ key: `${at}.bus`, message: `unknown bus "${d.bus}" (buses: ${[...buses.keys()].join(', ')})` });
    } else {
      const slave = `${d.bus}/${d.unitId}`;
      const other = slaves.get(slave);
      if (other) problems.push({ key: `${at}.unitId`, message: `unit id ${d.unitId} on bus ${d.bus} is already device "${other}"` });
      else slaves.set(slave, d.id);
    }
  });
  return problems.slice(0, 10);
}

/** Each device of the config and its kind (profile id): its rule overrides are checked against that kind. */
export function deviceKinds(cfg: Pick<EdgeConfig, 'devices'>): Map<string, string> {
  return new Map(cfg.devices.map((d) => [d.id, d.profile]));
}

/**
 * What the edge polls, as a short digest of its buses and devices: the birth carries it with the
 * revision, and the cloud resends `set-devices` to an edge whose digest differs from the registry's.
 */
export function devicesDigest(cfg: Pick<EdgeConfig, 'buses' | 'devices'>): string {
  return createHash('sha256').update(JSON.stringify({ buses: cfg.buses, devices: cfg.devices }, sortedKeys)).digest('base64url').slice(0, 22);
}

/** JSON.stringify replacer: objects' keys in sorted order, so equal contents give equal text. */
function sortedKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** An edge config object checked whole (defaults applied): the schema, then the references `crossCheckEdgeConfig` checks. */
export function checkEdgeConfig(value: unknown, profiles: Map<string, Profile>): { ok: true; value: EdgeConfig } | { ok: false; problems: SchemaProblem[] } {
  const result = check(EdgeConfig, value);
  if (!result.ok) return { ok: false, problems: result.problems };
  const problems = crossCheckEdgeConfig(result.value, profiles);
  return problems.length ? { ok: false, problems } : { ok: true, value: result.value };
}
