import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_MAX_PACKET_SIZE } from '../gateway/gateway.ts';
import { DEFAULT_KEY_PREFIX, DEFAULT_STREAM_MAXLEN, KEY_PREFIX_PATTERN } from '../gateway/redis-defaults.ts';
import { DEFAULT_ADMIN_HTTP_LIMITS } from '../gateway/admin-limits.ts';
import { DEFAULT_LOGIN_GUARD } from '../lib/login-guard.ts';
import { DEFAULT_FAST_POLL_MS } from '../lib/vocabulary.ts';
import { WorkflowConfig } from '../cloud/cases/policy.ts';
import { WebConfigKey } from '../cloud/web/config-route.ts';
import { EscalationSettings } from '../cloud/config/settings.ts';
import { WarningPolicy } from '../cloud/emergency/policy.ts';
import { resolve } from 'node:path';
import { ConfigError } from '../lib/config.ts';

/**
 * Config files of the services started by the command line (YAML, validated; a bad file
 * names the key, the problem and the file). Command-line flags override file values.
 */

export const GatewayServiceConfig = Type.Object({
  mqtt: Type.Object({
    host: Type.String({ default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
    maxPacketSizeBytes: Type.Integer({ minimum: 1024, default: DEFAULT_MAX_PACKET_SIZE }),
  }, { additionalProperties: false, default: {} }),
  /** A TLS listener beside the plain one; paths relative to the config file. */
  tls: Type.Optional(Type.Object({
    host: Type.Optional(Type.String()),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883 }),
    cert: Type.String({ minLength: 1 }),
    key: Type.String({ minLength: 1 }),
    ca: Type.Optional(Type.String({ minLength: 1 })),
    /** none: passwords only; optional: a client certificate (subject CN = username) or a password; required: a certificate. */
    clientCerts: Type.Union([Type.Literal('none'), Type.Literal('optional'), Type.Literal('required')], { default: 'none' }),
  }, { additionalProperties: false })),
  limits: Type.Object({
    maxConnections: Type.Integer({ minimum: 1, default: 50000 }),
    connectionsPerSecond: Type.Number({ exclusiveMinimum: 0, default: 2000 }),
    connectionBurst: Type.Integer({ minimum: 1, default: 10000 }),
    publishesPerSecond: Type.Number({ exclusiveMinimum: 0, default: 500 }),
    publishBurst: Type.Integer({ minimum: 1, default: 2000 }),
    /** A subscriber whose socket stays full this long is disconnected (aedes drainTimeout). */
    drainTimeoutMs: Type.Integer({ minimum: 0, default: 30000 }),
  }, { additionalProperties: false, default: {} }),
  /** Shared sessions and routing on Redis, for several broker processes serving one city. */
  redis: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^redis://' }),
    keyPrefix: Type.String({ pattern: KEY_PREFIX_PATTERN, default: DEFAULT_KEY_PREFIX }),
  }, { additionalProperties: false })),
  /** Readings appended to a Redis Stream (key = redis.keyPrefix + key) before their PUBACK. */
  stream: Type.Optional(Type.Object({
    key: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'readings' }),
    maxLen: Type.Integer({ minimum: 0, default: DEFAULT_STREAM_MAXLEN }),
    /** Partitions by gateway (docs/architecture.md#partitions); the same on every broker and cloud worker. */
    partitions: Type.Integer({ minimum: 1, maximum: 1024, default: 1 }),
  }, { additionalProperties: false })),
  /** /metrics, /healthz and the credentials admin API (admin token from CS_GATEWAY_ADMIN_TOKEN). */
  http: Type.Optional(Type.Object({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9883 }),
    /** Timeouts and connection caps (gateway/admin.ts DEFAULT_ADMIN_HTTP_LIMITS), checked as the cloud's (lib/http-limits.ts). */
    limits: Type.Object({
      headersTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: DEFAULT_ADMIN_HTTP_LIMITS.headersTimeoutMs }),
      requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: DEFAULT_ADMIN_HTTP_LIMITS.requestTimeoutMs }),
      keepAliveTimeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: DEFAULT_ADMIN_HTTP_LIMITS.keepAliveTimeoutMs }),
      idleTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 600_000, default: DEFAULT_ADMIN_HTTP_LIMITS.idleTimeoutMs }),
      maxConnections: Type.Integer({ minimum: 1, maximum: 1_000_000, default: DEFAULT_ADMIN_HTTP_LIMITS.maxConnections }),
      maxConnectionsPerAddress: Type.Integer({ minimum: 0, maximum: 1_000_000, default: DEFAULT_ADMIN_HTTP_LIMITS.maxConnectionsPerAddress }),
    }, { additionalProperties: false, default: {} }),
  }, { additionalProperties: false })),
  /** Password checks under a storm of bad logins (gateway/login-guard.ts; its DEFAULT_LOGIN_GUARD). */
  logins: Type.Object({
    /** Checks at once; omitted: one less than the cores or the libuv pool, at least 2. */
    maxConcurrentChecks: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    maxQueuedChecks: Type.Integer({ minimum: 0, maximum: 1_000_000, default: DEFAULT_LOGIN_GUARD.maxQueuedChecks }),
    freeFailuresPerUsername: Type.Integer({ minimum: 0, maximum: 1_000, default: DEFAULT_LOGIN_GUARD.freeFailuresPerUsername }),
    freeFailuresPerAddress: Type.Integer({ minimum: 0, maximum: 100_000, default: DEFAULT_LOGIN_GUARD.freeFailuresPerAddress }),
    backoffMs: Type.Integer({ minimum: 1, maximum: 3_600_000, default: DEFAULT_LOGIN_GUARD.backoffMs }),
    maxBackoffMs: Type.Integer({ minimum: 1, maximum: 86_400_000, default: DEFAULT_LOGIN_GUARD.maxBackoffMs }),
    failureWindowMs: Type.Integer({ minimum: 1_000, maximum: 86_400_000, default: DEFAULT_LOGIN_GUARD.failureWindowMs }),
    maxTrackedKeys: Type.Integer({ minimum: 100, maximum: 10_000_000, default: DEFAULT_LOGIN_GUARD.maxTrackedKeys }),
  }, { additionalProperties: false, default: {} }),
  /** Development only: CONNECT without credentials allowed (cs/v1 tree). Logged loudly at start. */
  allowAnonymous: Type.Boolean({ default: false }),
}, { additionalProperties: false });
export type GatewayServiceConfig = Static<typeof GatewayServiceConfig>;

export const CloudServiceConfig = Type.Object({
  /** The device registry: devices, buses, gateways and units. */
  district: Type.String({ minLength: 1 }),
  /** A directory of the user's own device profiles (relative to this file); `--profiles` overrides it. */
  profiles: Type.Optional(Type.String({ minLength: 1 })),
  http: Type.Object({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    /**
     * Behind a reverse proxy: trust its X-Forwarded-For/-Proto (Fastify trustProxy: true, or the proxy's
     * addresses, e.g. "127.0.0.1,10.0.0.0/8"), so sign-in throttling sees the client and cookies get Secure.
     */
    trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.String({ minLength: 1 })])),
    /** Timeouts and connection caps (README "Limits and error bodies"); lib/http-limits.ts defaults for what is omitted. */
    limits: Type.Optional(Type.Object({
      headersTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
      requestTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
      keepAliveTimeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 120_000 })),
      idleTimeoutMs: Type.Optional(Type.Integer({ minimum: 1_000, maximum: 600_000 })),
      maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
      maxConnectionsPerAddress: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
      maxEventStreamsPerToken: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
      /** Per credential (token or session): a bucket of requestBurst refilled at requestsPerSecond; 0 = off. */
      requestsPerSecond: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
      requestBurst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    }, { additionalProperties: false })),
  }, { additionalProperties: false, default: {} }),
  /** SQLite file (relative to the data directory) or a PostgreSQL URL. */
  database: Type.Object({
    kind: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'sqlite' }),
    file: Type.String({ default: 'citysteward.db' }),
    url: Type.Optional(Type.String()),
  }, { additionalProperties: false, default: {} }),
  mqtt: Type.Object({
    url: Type.String({ pattern: '^mqtts?://' }),
    /** Further brokers of the cluster, tried in turn when the connection is lost. */
    urls: Type.Optional(Type.Array(Type.String({ pattern: '^mqtts?://' }), { minItems: 1, maxItems: 16 })),
    username: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1 }),
    /** A fixed client id: a persistent session (clean=false), so the broker queues readings while the cloud is away. */
    clientId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })),
  }, { additionalProperties: false }),
  /**
   * At city scale: read readings from the brokers' Redis Stream through a consumer group instead of
   * subscribing over MQTT (gateway states still come over MQTT). See README "The hand-off to the cloud".
   */
  stream: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^rediss?://' }),
    /** Full stream key: the brokers' redis.keyPrefix + stream.key. */
    key: Type.String({ minLength: 1, default: 'cs:readings' }),
    group: Type.String({ minLength: 1, default: 'cloud' }),
    /** This worker's name, unique and stable across restarts (e.g. the host name). */
    consumer: Type.String({ minLength: 1 }),
    /** Partitions by gateway, as on the brokers (docs/architecture.md#partitions): one worker owns each. */
    partitions: Type.Integer({ minimum: 1, maximum: 1024, default: 1 }),
    /** A worker's leases on its partitions last this long unrenewed, ms: how soon another takes over a dead one's. */
    leaseMs: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000 }),
  }, { additionalProperties: false })),
  /** Plausible reading time (README "Topics"): how far ahead of the cloud's clock, how far behind. */
  readings: Type.Optional(Type.Object({
    maxSkewMs: Type.Optional(Type.Integer({ minimum: 0 })),
    maxAgeMs: Type.Optional(Type.Integer({ minimum: 1 })),
  }, { additionalProperties: false })),
  /** Group commit (docs/architecture.md#ingest): readings per transaction at most, and the longest wait for a batch to fill. */
  ingest: Type.Optional(Type.Object({
    batchReadings: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1000 })),
    batchDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: 2 })),
  }, { additionalProperties: false })),
  /** How long readings are kept (README "Retention of readings"): raw rows, minute and hour rollups, in days. */
  retention: Type.Optional(Type.Object({
    rawDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500, default: 30 })),
    minuteDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500, default: 90 })),
    hourDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500, default: 730 })),
  }, { additionalProperties: false })),
  /** The InfluxDB sink (README "InfluxDB sink"): off when absent; the token is never logged. */
  influx: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^https?://' }), org: Type.String({ minLength: 1 }), bucket: Type.String({ minLength: 1 }), token: Type.String({ minLength: 1 }),
    queueDir: Type.Optional(Type.String({ minLength: 1 })),
    maxQueueBytes: Type.Optional(Type.Integer({ minimum: 65_536 })),
  }, { additionalProperties: false })),
  /**
   * A rule-set file (devices/rules.ts; relative to this file); the defaults when omitted. Give every
   * edge's `rules` the same file so the edges' local alarms judge as the cloud does (README "Rules").
   */
  rules: Type.Optional(Type.String({ minLength: 1 })),
  /** The evaluation (README "Evaluation"): `scoring`, a scoring-rules file (relative to this file); Jinhua's example when omitted. */
  evaluation: Type.Optional(Type.Object({ scoring: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false })),
  /** Case photos (README "Cases"): the directory (relative to the data directory; required with PostgreSQL) and the far-from-asset distance. */
  photos: Type.Optional(Type.Object({
    dir: Type.Optional(Type.String({ minLength: 1 })),
    maxDistanceM: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  }, { additionalProperties: false })),
  /** The case workflow's settings (README "Cases"): verification window, reopening, history interval, limits. */
  workflow: Type.Optional(WorkflowConfig),
  /** The category catalogue file (docs/catalogue.md; relative to this file); the demo's when omitted. */
  catalogue: Type.Optional(Type.String({ minLength: 1 })),
  /** A routing file (cloud/routing.ts: rules, unit members, duty leaders; relative to this file); owner/maintainer routing when omitted. */
  routing: Type.Optional(Type.String({ minLength: 1 })),
  /** A work-calendar file (cloud/calendar.ts; relative to this file); China's (cloud/data/calendar-cn.json) when omitted. */
  calendar: Type.Optional(Type.String({ minLength: 1 })),
  /** The case clock's steps (README "Configuration as data"); the defaults for what is omitted. */
  escalation: Type.Optional(Type.Partial(EscalationSettings)),
  /** The web application (README "The map"): `web.map.tiles`, a tile source for deployments that have one. */
  web: Type.Optional(WebConfigKey),
  /** Emergency mode: what gateways switch to, and the warning policy (README "Emergency mode"). */
  emergency: Type.Optional(Type.Object({
    fastPollMs: Type.Integer({ minimum: 100, default: DEFAULT_FAST_POLL_MS }),
    acceptTest: Type.Boolean({ default: false }),
    acceptExercise: Type.Boolean({ default: false }),
    geocodes: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9]{2,12}$' }))),
    areaNames: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** Event names (case-insensitive substrings) that count; signal colours and CAP severities to levels (cloud/emergency/policy.ts). */
    events: Type.Optional(WarningPolicy.properties.events),
    signals: Type.Optional(WarningPolicy.properties.signals),
    /** Retry period of unacknowledged mode commands (default 3000). */
    retryMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
  }, { additionalProperties: false })),
  /**
   * Gateways created through the registry API get a broker credential, made through the brokers' admin API,
   * and a ready edge config file connecting to `edge.mqtt` (README "Provisioning gateways"). Off when omitted.
   */
  provisioning: Type.Optional(Type.Object({
    brokerAdmin: Type.Object({
      /** Each broker's admin URL (its `http` port); brokers sharing a credentials file: any one answers for all. */
      urls: Type.Array(Type.String({ pattern: '^https?://' }), { minItems: 1, maxItems: 16 }),
      /** The brokers' CS_GATEWAY_ADMIN_TOKEN; else the cloud's own CS_GATEWAY_ADMIN_TOKEN environment variable. */
      token: Type.Optional(Type.String({ minLength: 16 })),
      timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000 })),
    }, { additionalProperties: false }),
    edge: Type.Object({
      /** The brokers as the edges reach them: `url`, and `urls` to fail over to. */
      mqtt: Type.Object({
        url: Type.String({ pattern: '^mqtts?://' }),
        urls: Type.Optional(Type.Array(Type.String({ pattern: '^mqtts?://' }), { minItems: 1, maxItems: 16 })),
      }, { additionalProperties: false }),
      pollMs: Type.Optional(Type.Integer({ minimum: 100 })),
    }, { additionalProperties: false }),
  }, { additionalProperties: false })),
}, { additionalProperties: false });
export type CloudServiceConfig = Static<typeof CloudServiceConfig>;

export const DemoConfig = Type.Object({
  district: Type.Optional(Type.String()),
  /** A directory of the user's own device profiles (relative to this file); `--profiles` overrides it. */
  profiles: Type.Optional(Type.String({ minLength: 1 })),
  httpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  mqttPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
}, { additionalProperties: false });
export type DemoConfig = Static<typeof DemoConfig>;

/** The cloud's photo settings: `photos.dir` relative to the data directory; required with PostgreSQL (no file beside which to default it). */
export function photosOf(cfg: CloudServiceConfig, db: 'sqlite' | 'postgres', file: string, dataDir: string): { dir?: string; maxDistanceM?: number } {
  if (db === 'postgres' && !cfg.photos?.dir) {
    throw new ConfigError('CS_CONFIG_INVALID', file, [{ key: 'photos.dir', message: 'is required when database.kind is postgres (where case photos are stored)' }]);
  }
  return { dir: cfg.photos?.dir ? resolve(dataDir, cfg.photos.dir) : undefined, maxDistanceM: cfg.photos?.maxDistanceM };
}
