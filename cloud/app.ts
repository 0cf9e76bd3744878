import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import cookie from '@fastify/cookie';
import { performance } from 'node:perf_hooks';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import { categoriesOf, type Catalogue } from './catalogue/index.ts';
import { openDatabase, type DbOptions } from './db/database.ts';
import type { BatchOptions } from './ingest-batch.ts';
import { createIngestor, type IngestResult, type IngestStats, type WarnLimit } from './ingest.ts';
import type { ReadingLimits } from './reading-check.ts';
import { createIntake } from './intake.ts';
import { createCloudMetrics } from './metrics.ts';
import { buildInfluxSink, type InfluxConfig } from './influx/sink.ts';
import { createEdgeAlarmIngestor, type EdgeAlarmResult, type EdgeAlarmStats } from './edge-alarms/ingest.ts';
import { parseTopic } from '../lib/topics.ts';
import { createSubscriber, type MqttOptions } from './mqtt.ts';
import type { StreamSourceOptions } from './stream.ts';
import { streamWorker } from './stream-worker.ts';
import { createCalendar, DEFAULT_CALENDAR, type WorkCalendar } from './calendar.ts';
import { DEFAULT_WORKFLOW, type CaseEnv, type WorkflowPolicy } from './cases/index.ts';
import { buildEscalator, DEFAULT_ESCALATION, type EscalationPolicy, type Escalator } from './escalation.ts';
import { createEventBus, eventTopic, type EventBus } from './events.ts';
import { NORMAL_MODE, type ModeProvider } from './mode.ts';
import type { Routing } from './routing.ts';
import { createRuleEngine, type RuleSet } from './rules.ts';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';
import { registerCaseRoutes } from './http/case-routes.ts';
import type { ScoringRules } from './evaluation/scoring.ts';
import { createTokenStore, type Role } from './tokens.ts';
import { installAuth } from './http/auth.ts';
import { createUserStore, type UserStore } from './users.ts';
import { createSessionStore, DEFAULT_SESSION_POLICY, type SessionPolicy } from './sessions.ts';
import { registerSessionRoutes } from './http/session-routes.ts';
import type { LoginGuardOptions } from '../lib/login-guard.ts';
import { clientErrorHandler, frameworkErrors, installErrorHandling } from './http/errors.ts';
import { installFiniteCheck } from './http/finite.ts';
import { checkHttpLimits, createStreamLimiter, defaultHttpLimits, guardConnections, serverOptions, type ConnectionStats, type HttpLimits } from '../lib/http-limits.ts';
import { registerRoutes } from './http/routes.ts';
import * as S from './http/schemas.ts';
import { buildEmergency, type Emergency } from './emergency/service.ts';
import { WarningPolicy } from './emergency/policy.ts';
import { emergencyRoutes } from './emergency/routes.ts';
import type { EmergencyConfig } from './emergency/config.ts';
import { installOpen311 } from './open311/index.ts';
import { createSharedAcks } from './emergency/shared-acks.ts';
import { check } from '../lib/schema.ts';
import { EdgeHealthSchema, type EdgeHealth, type GatewayState } from '../lib/messages.ts';
import { webApp } from './web/plugin.ts';
import { DEFAULT_CONFIG_SYNC_MS, installConfig, startingConfig, type ConfigService } from './config/index.ts';
import { DEFAULT_PHOTO_MAX_DISTANCE_M, photoRoutes } from './photos/routes.ts';
import { createPhotoStore } from './photos/store.ts';
import { checkRetention, createReadingPruner, DEFAULT_RETENTION, type RetentionPolicy } from './reading-retention.ts';
import { dirname, join } from 'node:path';
import { registerWebConfigRoute, tileOrigins, webOptions, type WebOptions } from './web/config-route.ts';
import { buildRegistry, type RegistryApi, type RegistryOptions } from './registry/index.ts';
import { derive } from './registry/view.ts';
import { createVersionPoll } from './version-poll.ts';
import { lateProvisioning, type ProvisioningOptions } from './provision/index.ts';

export type { DbOptions } from './db/database.ts';
export type { Cloud, CloudOptions, ReadingSource } from './cloud-types.ts';
import type { Cloud, CloudOptions } from './cloud-types.ts';
export type { EmergencyConfig } from './emergency/config.ts';
export type { IngestResult, IngestStats } from './ingest.ts';
export type { EdgeAlarmResult, EdgeAlarmStats } from './edge-alarms/ingest.ts';
export type { HttpLimits, ConnectionStats } from '../lib/http-limits.ts';
export { createTokenInDatabase, revokeTokenInDatabase, type Role } from './tokens.ts';
export type { User, UserStore } from './users.ts';

/**
 * The cloud: Fastify app (REST API, OpenAPI at /docs), ingest pipeline, MQTT subscriber and
 * database. Building it stores the parts and registers routes, opening nothing; `start` opens and
 * migrates the database, then connects MQTT or the stream and starts the timers; `stop` closes all.
 */
export async function buildCloud(opts: CloudOptions): Promise<Cloud> {
  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? silentLogger();
  // Configuration is checked before anything opens: a refusal leaves nothing to close.
  const { routing, catalogue, ruleSet } = startingConfig(opts, logger);
  const retention = { ...DEFAULT_RETENTION, ...Object.fromEntries(Object.entries(opts.retention ?? {}).filter(([, v]) => v !== undefined)) };
  const retentionProblems = checkRetention(retention);
  if (retentionProblems.length) throw new CsError(CloudErrors.CONFIG_INVALID, retentionProblems.join('; '));
  const web = webOptions(opts.web);
  const influx = buildInfluxSink(opts.influx, opts.db, logger.child({ mod: 'influx' }));
  // The metrics come first: the database and the ingest report timings to them; the rest is read when scraped.
  let liveStreams = (): number => 0;
  const metrics = createCloudMetrics(() => ({ ...ingestor.stats(), edgeAlarms: edgeAlarms.stats() }), {
    db: () => database.db, now, caseClock: () => escalator?.stats(), liveStreams: () => liveStreams(), influxQueue: influx && (() => influx.stats()),
  });
  const database = openDatabase(opts.db, logger.child({ mod: 'db' }), metrics.query);
  const provisioning = lateProvisioning(opts.provisioning, { profiles: opts.profiles, now, logger: logger.child({ mod: 'provision' }) });
  const reg = buildRegistry( // README "Device registry": `district` is its live view; opts.district seeds it
    { database, seed: opts.district, profiles: opts.profiles, now, logger: logger.child({ mod: 'registry' }), env: () => env, options: { provision: provisioning.hook, pushStatus: provisioning.pushStatus, ...opts.registry } });
  const { district, knownUnits } = reg.registry;
  const tokenStore = createTokenStore(database, now, knownUnits);
  const userStore = createUserStore(database, now, { knownUnits });
  const sessionStore = createSessionStore(database, now, { ...DEFAULT_SESSION_POLICY, ...opts.sessions });
  const clock = opts.clock ?? (() => performance.now());
  const engine = createRuleEngine(ruleSet);
  // Emergency mode: the cloud's own audited service backs the mode rules and deadlines read.
  let emergency: Emergency | undefined;
  const mode: ModeProvider = opts.mode ?? (opts.emergency === false ? NORMAL_MODE : {
    emergency: () => emergency?.current()?.mode === 'emergency',
    epoch: () => (emergency?.current()?.mode === 'emergency' ? emergency.current()!.epoch : null),
  });
  const events = createEventBus();
  const calendarData = opts.calendar ?? DEFAULT_CALENDAR;
  const env: CaseEnv = {
    catalogue, categories: categoriesOf(catalogue), district, mode,
    calendar: createCalendar(calendarData, { warn: (m) => logger.child({ mod: 'calendar' }).warn(m) }),
    routing,
    workflow: { ...DEFAULT_WORKFLOW, ...opts.workflow },
  };
  // One intake for readings and edge alarms: a gateway's warnings share one limit (cloud/intake.ts).
  const intake = createIntake({ district, profiles: opts.profiles, logger: logger.child({ mod: 'ingest' }), warnLimit: opts.warnLimit, retired: reg.registry.retired, recheck: reg.recheck });
  const ingestor = createIngestor({
    database, district, profiles: opts.profiles, env, engine, mode, events,
    now, logger: logger.child({ mod: 'ingest' }), limits: opts.readings, batch: opts.ingestBatch, intake, observe: metrics.ingest, sink: influx?.stored,
  });
  const edgeAlarms = createEdgeAlarmIngestor({
    database, district, profiles: opts.profiles, env, engine, mode, events,
    now, logger: logger.child({ mod: 'edge-alarms' }), intake,
  });
  const escalator = opts.escalation === false ? undefined : buildEscalator({
    database, district, profiles: opts.profiles, env, engine, mode, events,
    policy: { ...DEFAULT_ESCALATION, ...opts.escalation }, now, logger: logger.child({ mod: 'case-clock' }),
  });
  const pruner = createReadingPruner({ database, now, logger: logger.child({ mod: 'retention' }), policy: retention });
  const gatewayStates = new Map<string, GatewayState>();
  // The newest edge health per gateway (bus and slave counters, outbox depth), shown by the device API.
  const gatewayHealth = new Map<string, { at: number; health: EdgeHealth }>();
  const inFlight = new Set<Promise<unknown>>();

  // Every ingest path (MQTT, the in-process hand-off, the Redis Stream) comes through here.
  const ingest = (gateway: string, topic: string, payload: Buffer): Promise<IngestResult | EdgeAlarmResult> => {
    // An edge alarm is stored after the readings queued before it (their batch commits first): a gateway's order is kept.
    const p = parseTopic(topic)?.kind === 'alarm'
      ? ingestor.flush().then(() => edgeAlarms.ingest(gateway, topic, payload))
      : ingestor.ingest(gateway, topic, payload);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    return p;
  };

  const source = opts.source ?? { kind: 'mqtt' };
  const subscriber = opts.mqtt ? createSubscriber({
    options: source.kind === 'mqtt' ? opts.mqtt : { ...opts.mqtt, readings: false },
    logger: logger.child({ mod: 'mqtt' }),
    // Rejected payloads are acknowledged (redelivery would not make them valid); failures are not.
    onReading: async (gateway, topic, payload) => (await ingest(gateway, topic, payload)).status !== 'failed',
    onState: (gateway, state) => {
      if (state) gatewayStates.set(gateway, state);
      else gatewayStates.delete(gateway);
      logger.info({ gateway, online: state?.online }, 'gateway state');
      if (state?.online) emergency?.fanout.onOnline(gateway);
      provisioning.onState(gateway, state);
    },
    onAck: (gateway, ack) => { emergency?.fanout.onAck(gateway, ack); provisioning.onAck(gateway, ack); },
    onHealth: (gateway, body) => {
      const r = check(EdgeHealthSchema, body, { owned: true });
      if (!r.ok) return logger.warn({ gateway, problems: r.problems }, 'edge health invalid; ignored');
      gatewayHealth.set(gateway, { at: now(), health: r.value });
    },
  }) : undefined;
  const streamConsumer = source.kind === 'redis-stream' ? streamWorker(source, { engine, ingestor, district, logger, ingest, events }) : undefined;
  // Events for integrations: cs/v1/events/{case|alarm}/{action}, published by the service identity.
  const unpublish = subscriber ? events.subscribe((e) => subscriber.publish(eventTopic(e.type), JSON.stringify(e))) : undefined;
  provisioning.attach(reg.api, (topic, payload) => subscriber?.publish(topic, payload));

  const httpLog = logger.child({ mod: 'http' });
  const limits = checkHttpLimits({ ...defaultHttpLimits(), ...Object.fromEntries(Object.entries(opts.http ?? {}).filter(([, v]) => v !== undefined)) });
  const app = Fastify({
    loggerInstance: httpLog,
    bodyLimit: 256 * 1024,
    trustProxy: opts.trustProxy ?? false,
    ...serverOptions(limits),
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(httpLog),
  }) as unknown as FastifyInstance;
  const connections = guardConnections(app.server, limits, httpLog, now);
  installErrorHandling(app, httpLog);
  installFiniteCheck(app);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'CitySteward cloud API', version: '0.1.0', description: 'Sensor readings, devices and the cases they become. Every route but /healthz, POST /api/session and /docs needs `Authorization: Bearer TOKEN` or the session cookie `cs_session` (POST /api/session); cookie-authenticated changes must be same-origin.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'cs_session' } } },
      security: [{ bearer: [] }, { session: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(S.ErrorReply);
  await app.register(cookie);
  installAuth(app, { tokens: tokenStore, sessions: sessionStore, clock, rate: { requestsPerSecond: limits.requestsPerSecond, burst: limits.requestBurst } });
  registerSessionRoutes(app, { users: userStore, sessions: sessionStore, clock, guard: opts.signIn });
  registerRoutes(app, {
    database, district, profiles: opts.profiles, now, gatewayStates, gatewayHealth,
    mqttStatus: () => (subscriber ? (subscriber.connected() ? 'connected' : 'disconnected') : 'disabled'),
    get routing() { return env.routing; }, metrics: metrics.scrape, notified: metrics.notified, engine, mode, retention, retired: reg.retired,
  });
  reg.install(app);
  ({ liveStreams } = registerCaseRoutes(app, {
    database, district, now, env, events, get ruleSet() { return engine.ruleSet(); }, get calendar() { return env.calendar.data; }, scoring: opts.scoring,
    knownUnits, streams: createStreamLimiter(limits.maxEventStreamsPerToken),
  }));
  const photosDir = opts.photos?.dir ?? (opts.db.kind === 'sqlite' ? join(dirname(opts.db.file), 'photos') : undefined);
  await app.register(async (scope) => photoRoutes(scope, {
    database, now, events, store: photosDir ? createPhotoStore(photosDir) : undefined,
    maxDistanceM: opts.photos?.maxDistanceM ?? DEFAULT_PHOTO_MAX_DISTANCE_M,
  }));
  registerWebConfigRoute(app, { district, web });
  await installOpen311(app, { database, district, env, events, now, logger: logger.child({ mod: 'open311' }),
    rate: { requestsPerSecond: limits.requestsPerSecond, burst: limits.requestBurst }, clock });
  // The web application (docs/architecture.md#web-application): public page and files, data through the API.
  await app.register(webApp, { profiles: opts.profiles, logger, dir: opts.webDir, imgOrigins: tileOrigins(web.map?.tiles) });

  if (!opts.mode && opts.emergency !== false) {
    const cfg = opts.emergency ?? {};
    const policy = check(WarningPolicy, cfg.policy ?? {});
    if (!policy.ok) throw new CsError(CloudErrors.RULES_INVALID, `emergency policy invalid: ${policy.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
    emergency = buildEmergency({
      db: database.db, write: database.write, policy: policy.value, events, cases: env,
      gateways: derive(() => district.gateways, (gs) => gs.map((g) => g.id)), // the live registry's, one array per change
      isOnline: (gw) => gatewayStates.get(gw)?.online === true,
      publish: async (topic, payload) => subscriber?.publish(topic, payload),
      now, logger: logger.child({ mod: 'emergency' }), fast: cfg.fast, retryMs: cfg.retryMs, tightenOpenCases: cfg.tightenOpenCases ?? true,
      lockRow: database.kind === 'postgres', syncMs: cfg.syncMs,
      acks: source.kind === 'redis-stream' ? createSharedAcks({ url: source.url, key: `${source.stream}:acks`, logger: logger.child({ mod: 'emergency' }) }) : undefined,
    });
    await app.register(async (scope) => emergencyRoutes(scope, { emergency: emergency!, db: database.db, district, profiles: opts.profiles, now }));
    // A gateway added while a mode command is out is sent it too (once online).
    reg.registry.onChange(() => emergency?.fanout.follow());
  }
  const config = installConfig(app, { database, district, profiles: opts.profiles, env, engine, escalator, emergency, escalation: opts.escalation,
    emergencyConfig: opts.emergency, now, logger: logger.child({ mod: 'config' }), warn: (m) => logger.child({ mod: 'calendar' }).warn(m) });
  // One poll of the registry's and the configuration's versions (cloud/version-poll.ts), each at its own interval.
  const versionPoll = createVersionPoll({ db: () => database.db, logger: logger.child({ mod: 'versions' }) });
  versionPoll.subscribe(reg.poll);
  versionPoll.subscribe({ name: 'config', everyMs: opts.configSyncMs ?? DEFAULT_CONFIG_SYNC_MS, onVersions: (v) => config.sync(v.config) });

  let migrated: Promise<void> | undefined;
  const ready = (): Promise<void> => {
    migrated ??= database.migrate().catch((err) => {
      migrated = undefined;
      throw err;
    });
    return migrated;
  };
  let stopped = false;

  return {
    app,
    async start() {
      await ready();
      await reg.registry.start();
      await config.start();
      versionPoll.start();
      await ingestor.seed();
      await emergency?.start();
      await subscriber?.start();
      await streamConsumer?.start();
      escalator?.start();
      pruner.start();
      influx?.start();
      logger.info({ db: opts.db.kind, mqtt: opts.mqtt?.url ?? null }, 'cloud started');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await versionPoll.stop();
      provisioning.stop();
      await config.stop();
      await escalator?.stop();
      await pruner.stop();
      await emergency?.stop();
      unpublish?.();
      await streamConsumer?.stop();
      // What is stored by now is acknowledged before the subscription goes (less to redeliver).
      await ingestor.flush();
      await subscriber?.stop();
      await ingestor.flush();
      await Promise.allSettled([...inFlight]);
      await influx?.stop();
      ingestor.close();
      edgeAlarms.close();
      await app.close();
      await database.close();
    },
    ingest,
    users: {
      create: async (...a) => (await ready(), userStore.create(...a)),
      get: async (u) => (await ready(), userStore.get(u)),
      setPassword: async (...a) => (await ready(), userStore.setPassword(...a)),
      disable: async (...a) => (await ready(), userStore.disable(...a)),
      setRole: async (...a) => (await ready(), userStore.setRole(...a)),
      authenticate: async (u, p) => (await ready(), userStore.authenticate(u, p)),
    },
    stats: () => ({ ...ingestor.stats(), edgeAlarms: edgeAlarms.stats() }),
    tokens: {
      create: async (role, unit) => (await ready(), (await tokenStore.create(role, unit)).token),
      async revokeToken(token) {
        await ready();
        const p = await tokenStore.verify(token);
        return p ? tokenStore.revoke(p.tokenId) : false;
      },
    },
    events,
    escalator,
    emergency,
    connections,
    config,
    registry: reg.api,
  };
}
