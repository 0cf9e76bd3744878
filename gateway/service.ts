/**
 * The gateway as a service (`citysteward gateway`): the broker plus what a deployment
 * adds around it, built from the validated config (cli/config.ts GatewayServiceConfig):
 *
 * - `redis`: shared sessions and routing for several broker processes (cluster.ts);
 * - `stream`: readings appended to a Redis Stream before their PUBACK (stream.ts);
 * - `http`: /metrics, /healthz and the credentials admin API (admin.ts);
 * - `tls`, `limits`, `allowAnonymous`: passed to the broker (gateway.ts).
 *
 * start() brings them up in dependency order and stop() closes all of them in reverse,
 * including the Redis connections Aedes' own close() leaves open (docs/architecture.md#platform-notes).
 */
import { StopStack } from '../lib/lifecycle.ts';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { buildAdminApp } from './admin.ts';
import { buildClusterBackend, type ClusterBackend } from './cluster.ts';
import type { CredentialStore } from './credentials.ts';
import { GatewayErrors } from './errors.ts';
import { buildGateway, type Gateway, type GatewayLimits, type GatewayTlsOptions } from './gateway.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import { buildStreamAppender, type StreamAppender } from './stream.ts';

export interface GatewayServiceSettings {
  mqtt: { host: string; port: number; maxPacketSizeBytes: number };
  /** File paths already resolved. */
  tls?: { host?: string; port: number; cert: string; key: string; ca?: string; clientCerts: 'none' | 'optional' | 'required' };
  limits: GatewayLimits & { drainTimeoutMs: number };
  redis?: { url: string; keyPrefix: string };
  stream?: { key: string; maxLen: number };
  http?: { host: string; port: number };
  allowAnonymous: boolean;
}

export interface GatewayServiceOptions {
  settings: GatewayServiceSettings;
  credentials: CredentialStore;
  logger: Logger;
  /** Bearer token of the admin API; the admin routes are off without one. */
  adminToken?: string;
  brokerId?: string;
}

export interface GatewayServiceAddresses {
  mqtt: string;
  mqtts?: string;
  http?: string;
  brokerId: string;
  stream?: string;
}

export interface GatewayService {
  start(): Promise<GatewayServiceAddresses>;
  stop(): Promise<void>;
  readonly gateway: Gateway;
  readonly metrics: GatewayMetrics;
}

export function buildGatewayService(opts: GatewayServiceOptions): GatewayService {
  const s = opts.settings;
  const log = opts.logger;
  const brokerId = opts.brokerId ?? randomUUID();
  const metrics = createGatewayMetrics({ defaultMetrics: true });
  // Stopped in reverse order: HTTP, broker (clients closed, Wills handled), stream, Redis state.
  const stops = new StopStack(log, 'gateway');
  let cluster: ClusterBackend | undefined;
  let appender: StreamAppender | undefined;
  let admin: FastifyInstance | undefined;

  if (s.stream && !s.redis) throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, 'stream needs redis: set redis.url');
  // Read the TLS files before any Redis connection opens: a missing file then leaves nothing open.
  if (s.redis) cluster = buildClusterBackend({ url: s.redis.url, keyPrefix: s.redis.keyPrefix }, log.child({ mod: 'redis' }));
  const streamKey = s.stream && s.redis ? `${s.redis.keyPrefix}${s.stream.key}` : undefined;
  if (streamKey) {
    appender = buildStreamAppender({ url: s.redis!.url, key: streamKey, maxLen: s.stream!.maxLen, brokerId, logger: log.child({ mod: 'stream' }) });
  }

  const tls: GatewayTlsOptions | undefined = s.tls ? {
    host: s.tls.host, port: s.tls.port, cert: readFileSync(s.tls.cert), key: readFileSync(s.tls.key),
    ...(s.tls.ca ? { ca: readFileSync(s.tls.ca) } : {}), clientCerts: s.tls.clientCerts,
  } : undefined;

  const gateway = buildGateway({
    host: s.mqtt.host,
    port: s.mqtt.port,
    maxPacketSize: s.mqtt.maxPacketSizeBytes,
    drainTimeout: s.limits.drainTimeoutMs,
    limits: s.limits,
    tls,
    allowAnonymous: s.allowAnonymous,
    credentials: opts.credentials,
    logger: log,
    metrics,
    brokerId,
    ...(cluster ? { cluster: { persistence: cluster.persistence, mq: cluster.mq } } : {}),
    ...(appender ? {
      onPublishAuthorized: async (_identity, topic, payload) => {
        try {
          if (await appender!.append(topic, payload)) metrics.streamAppends.inc();
        } catch (err) {
          metrics.streamErrors.inc();
          throw err;
        }
      },
    } : {}),
  });

  async function start(): Promise<GatewayServiceAddresses> {
    try {
      if (cluster) {
        stops.push(() => cluster!.close());
        await cluster.ready().catch((err: Error) => {
          throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, `cannot reach redis at ${s.redis!.url}: ${err.message}`);
        });
      }
      if (appender) {
        stops.push(() => appender!.stop());
        await appender.start().catch((err: Error) => {
          throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, `cannot reach redis at ${s.redis!.url}: ${err.message}`);
        });
      }
      const at = await gateway.start();
      stops.push(() => gateway.stop());
      let http: string | undefined;
      if (s.http) {
        admin = await buildAdminApp({
          credentials: opts.credentials, metrics, adminToken: opts.adminToken, logger: log.child({ mod: 'admin' }),
          connections: () => gateway.stats().connections,
        });
        stops.push(() => admin!.close());
        http = await admin.listen({ host: s.http.host, port: s.http.port });
      }
      if (s.http && !opts.adminToken) log.info('gateway admin API off: no admin token (CS_GATEWAY_ADMIN_TOKEN)');
      return {
        mqtt: `mqtt://${at.host}:${at.port}`,
        ...(at.tlsPort !== undefined ? { mqtts: `mqtts://${s.tls?.host ?? at.host}:${at.tlsPort}` } : {}),
        ...(http ? { http } : {}),
        brokerId,
        ...(streamKey ? { stream: streamKey } : {}),
      };
    } catch (err) {
      await stop();
      throw err;
    }
  }

  async function stop(): Promise<void> {
    await stops.stopAll();
  }

  return { start, stop, gateway, metrics };
}
