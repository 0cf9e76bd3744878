import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { GatewayState } from '../lib/messages.ts';
import type { District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import { DEFAULT_CATEGORIES, type Categories } from './categories.ts';
import { openDatabase, type DbOptions } from './db/database.ts';
import { createIngestor, type IngestResult, type IngestStats } from './ingest.ts';
import { createSubscriber, type MqttOptions } from './mqtt.ts';
import { createTokenStore, type Role } from './tokens.ts';
import { installAuth } from './http/auth.ts';
import { installErrorHandling } from './http/errors.ts';
import { registerRoutes } from './http/routes.ts';
import * as S from './http/schemas.ts';

export type { Role } from './tokens.ts';
export type { DbOptions } from './db/database.ts';
export type { IngestResult, IngestStats } from './ingest.ts';
export { createTokenInDatabase, revokeTokenInDatabase } from './tokens.ts';

export interface CloudOptions {
  db: DbOptions;
  district: District;
  profiles: Map<string, Profile>;
  /** Omit to run without a broker (ingest only through `cloud.ingest`). */
  mqtt?: MqttOptions;
  logger?: Logger;
  now?: () => number;
  /** Case categories by hazard; DEFAULT_CATEGORIES (DESIGN.md section 3) when omitted. */
  categories?: Categories;
}

export interface Cloud {
  app: FastifyInstance;
  /** Migrates the database, connects MQTT and subscribes readings and gateway states (QoS 1). */
  start(): Promise<void>;
  /** Disconnects MQTT, waits for readings in flight, closes the HTTP server and the database. */
  stop(): Promise<void>;
  ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult>;
  stats(): IngestStats;
  tokens: { create(role: Role, unit?: string): Promise<string> };
}

/**
 * The cloud: Fastify app (REST API, OpenAPI at /docs), ingest pipeline, MQTT subscriber and
 * database. Building it opens the database and registers routes; `start` does the rest.
 */
export async function buildCloud(opts: CloudOptions): Promise<Cloud> {
  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? silentLogger();
  const database = openDatabase(opts.db, logger.child({ svc: 'db' }));
  const tokenStore = createTokenStore(database, now, new Set(opts.district.units.map((u) => u.id)));
  const ingestor = createIngestor({
    database, district: opts.district, profiles: opts.profiles, categories: opts.categories ?? DEFAULT_CATEGORIES,
    now, logger: logger.child({ svc: 'ingest' }),
  });
  const gatewayStates = new Map<string, GatewayState>();
  const inFlight = new Set<Promise<unknown>>();

  const ingest = (gateway: string, topic: string, payload: Buffer): Promise<IngestResult> => {
    const p = ingestor.ingest(gateway, topic, payload);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    return p;
  };

  const subscriber = opts.mqtt ? createSubscriber({
    options: opts.mqtt,
    logger: logger.child({ svc: 'mqtt' }),
    // Rejected payloads are acknowledged (redelivery would not make them valid); failures are not.
    onReading: async (gateway, topic, payload) => (await ingest(gateway, topic, payload)).status !== 'failed',
    onState: (gateway, state) => {
      if (state) gatewayStates.set(gateway, state);
      else gatewayStates.delete(gateway);
      logger.info({ gateway, online: state?.online }, 'gateway state');
    },
  }) : undefined;

  const app = Fastify({
    loggerInstance: logger.child({ svc: 'http' }),
    bodyLimit: 256 * 1024,
  }) as unknown as FastifyInstance;
  installErrorHandling(app, logger.child({ svc: 'http' }));
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'CitySteward cloud API', version: '0.1.0', description: 'Sensor readings, devices and the cases they become. Every route but /healthz and /docs needs `Authorization: Bearer TOKEN`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(S.ErrorReply);
  installAuth(app, tokenStore);
  registerRoutes(app, {
    database, district: opts.district, profiles: opts.profiles, now, gatewayStates,
    mqttStatus: () => (subscriber ? (subscriber.connected() ? 'connected' : 'disconnected') : 'disabled'),
  });

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
      await subscriber?.start();
      logger.info({ db: opts.db.kind, mqtt: opts.mqtt?.url ?? null }, 'cloud started');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await subscriber?.stop();
      await Promise.allSettled([...inFlight]);
      await app.close();
      await database.close();
    },
    ingest,
    stats: () => ingestor.stats(),
    tokens: {
      async create(role, unit) {
        await ready();
        return (await tokenStore.create(role, unit)).token;
      },
    },
  };
}
