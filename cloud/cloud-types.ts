import type { FastifyInstance } from 'fastify';
import type { Logger } from '../lib/log.ts';
import type { LoginGuardOptions } from '../lib/login-guard.ts';
import type { ConnectionStats, HttpLimits } from '../lib/http-limits.ts';
import type { District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import type { Catalogue } from './catalogue/index.ts';
import type { ConfigService } from './config/index.ts';
import type { DbOptions } from './db/database.ts';
import type { EdgeAlarmResult, EdgeAlarmStats } from './edge-alarms/ingest.ts';
import type { EmergencyConfig } from './emergency/config.ts';
import type { Emergency } from './emergency/service.ts';
import type { EscalationPolicy, Escalator } from './escalation.ts';
import type { EventBus } from './events.ts';
import type { InfluxConfig } from './influx/sink.ts';
import type { BatchOptions } from './ingest-batch.ts';
import type { IngestResult, IngestStats, WarnLimit } from './ingest.ts';
import type { ModeProvider } from './mode.ts';
import type { MqttOptions } from './mqtt.ts';
import type { ProvisioningOptions } from './provision/index.ts';
import type { ReadingLimits } from './reading-check.ts';
import type { RetentionPolicy } from './reading-retention.ts';
import type { RegistryApi, RegistryOptions } from './registry/index.ts';
import type { Routing } from './routing.ts';
import type { RuleSet } from './rules.ts';
import type { SessionPolicy } from './sessions.ts';
import type { StreamSourceOptions } from './stream.ts';
import type { Role } from './tokens.ts';
import type { UserStore } from './users.ts';
import type { WorkCalendar } from './calendar.ts';
import type { WorkflowPolicy } from './cases/index.ts';
import type { ScoringRules } from './evaluation/scoring.ts';
import type { WebOptions } from './web/config-route.ts';

/** What buildCloud (cloud/app.ts) takes and what it gives back. */

/**
 * Where readings come from (gateway states always come over MQTT when `mqtt` is set):
 * `mqtt` (default) subscribes to them; `redis-stream` consumes the brokers' readings stream
 * through a consumer group (cloud/stream.ts); `in-process` takes them only through
 * `cloud.ingest` (the demo's broker calls it before each PUBACK).
 */
export type ReadingSource =
  | { kind: 'mqtt' }
  | ({ kind: 'redis-stream' } & StreamSourceOptions)
  | { kind: 'in-process' };

export interface CloudOptions {
  /** Where readings come from; `{ kind: 'mqtt' }` when omitted. */
  source?: ReadingSource;
  db: DbOptions;
  district: District;
  profiles: Map<string, Profile>;
  /** Omit to run without a broker (ingest only through `cloud.ingest`). */
  mqtt?: MqttOptions;
  logger?: Logger;
  now?: () => number;
  /** The category catalogue (docs/catalogue.md): people's categories and the sensor hazards'; the demo's when omitted. */
  catalogue?: Catalogue;
  /** Rules per device kind with per-device overrides; `defaultRuleSet(profiles)` when omitted. */
  rules?: RuleSet;
  /** Work calendar for working-hour and working-day limits; China's (cloud/data/calendar-cn.json, State Council days from chinese-days) when omitted. */
  calendar?: WorkCalendar;
  /** Routing rules and unit members; owner/maintainer routing when omitted. */
  routing?: Routing;
  workflow?: Partial<WorkflowPolicy>;
  /** The evaluation's scoring rules (cloud/evaluation/scoring.ts); Jinhua's example when omitted. */
  scoring?: ScoringRules;
  /** Reminders, escalation and the no-data check; `false` turns the case clock off. */
  escalation?: Partial<EscalationPolicy> | false;
  /** The built web application; cloud/web/dist when omitted (docs/architecture.md#web-application). */
  webDir?: string;
  /** Emergency mode as rules and deadlines see it. Omitted: the cloud's own emergency service (below); given: that provider, no service. */
  mode?: ModeProvider;
  /** Emergency mode (typhoon): the warning policy, the gateways' fast mode, tightening; `false` turns it off. */
  emergency?: EmergencyConfig | false;
  /** HTTP timeouts and connection caps (README "Limits and error bodies"); `defaultHttpLimits()` for what is omitted. */
  http?: Partial<HttpLimits>;
  /** The web application's settings: `map.tiles`, a tile source (cloud/web/config-route.ts); none: outlines only. */
  web?: WebOptions;
  /** Plausible reading time: `maxSkewMs` ahead (default 5 min), `maxAgeMs` behind (default 90 days). */
  readings?: Partial<ReadingLimits>;
  /** Raw readings and rollups kept (cloud/reading-retention.ts); DEFAULT_RETENTION for what is omitted. */
  retention?: Partial<RetentionPolicy>;
  /** Group commit: readings per transaction and the longest wait for a batch (docs/architecture.md#ingest). */
  ingestBatch?: Partial<BatchOptions>;
  /** Warnings about one gateway's bad readings per window (default 20 per 60 s, then a count). */
  warnLimit?: Partial<WarnLimit>;
  /** Case photos: `dir` (default `photos/` beside the SQLite file; PostgreSQL: none, uploads answer 503 until set), `maxDistanceM` from the asset before far-from-asset (200). */
  photos?: { dir?: string; maxDistanceM?: number };
  /** Session expiry: `idleMs` (default 12 h) and `absoluteMs` from sign-in (default 7 days). */
  sessions?: Partial<SessionPolicy>;
  /** Failed sign-ins: free failures and backoff (cloud/http/session-routes.ts DEFAULT_SIGNIN_GUARD). */
  signIn?: LoginGuardOptions;
  /** Behind a reverse proxy: trust its X-Forwarded-For/-Proto (Fastify `trustProxy`); off by default. */
  trustProxy?: boolean | string;
  influx?: InfluxConfig; // the InfluxDB sink (cloud/influx/sink.ts, README "InfluxDB sink"); off when omitted
  /** Real elapsed time (ms) for the per-credential rate limit and sign-in locks; default `performance.now`. */
  clock?: () => number;
  configSyncMs?: number; // how often a worker re-reads the configuration another changed (README "Configuration as data"; 2000)
  registry?: RegistryOptions; // the device registry (cloud/registry): version polling, the gateway provisioning hook; `district` seeds it
  provisioning?: ProvisioningOptions; // gateways created through the API: broker credential, edge config file, set-devices (cloud/provision)
}

export interface Cloud {
  app: FastifyInstance;
  /** Migrates the database, connects MQTT and subscribes readings and gateway states (QoS 1). */
  start(): Promise<void>;
  /** Disconnects MQTT, waits for readings in flight, closes the HTTP server and the database. */
  stop(): Promise<void>;
  /** A reading (`cs/v1/{gw}/up/{device}`) or an edge alarm (`cs/v1/{gw}/alarm/{device}`), by its topic. */
  ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult | EdgeAlarmResult>;
  /** Readings' counters, and the edge alarms' under `edgeAlarms`. */
  stats(): IngestStats & { edgeAlarms: EdgeAlarmStats };
  /** People who sign in (the store migrates the database first). */
  users: UserStore;
  tokens: {
    create(role: Role, unit?: string): Promise<string>;
    /** Revokes a token given in clear (the demo revokes its previous run's); false when unknown or already revoked. */
    revokeToken(token: string): Promise<boolean>;
  };
  /** Case and alarm events of this worker (also on SSE `/api/events` and MQTT `cs/v1/events/...`). */
  events: EventBus;
  /** The case clock (reminders, escalation, no data); undefined when turned off. */
  escalator?: Escalator;
  /** Emergency mode (undefined when turned off or when `mode` was given). */
  emergency?: Emergency;
  /** Connections open on the HTTP server and those shed by the caps. */
  connections(): ConnectionStats;
  config: ConfigService; // configuration as data (cloud/config/): changes checked, audited, applied without a restart
  registry: RegistryApi; // the live device registry: a gateway's buses and devices, change events (cloud/registry/index.ts)
}
