/**
 * The gateway as a service (`citysteward gateway`): the broker plus what a deployment
 * adds around it, built from the validated config (cli/config.ts GatewayServiceConfig):
 *
 * - `redis`: shared sessions and routing for several broker processes (cluster.ts);
 * - `stream`: readings appended to a Redis Stream before their PUBACK (stream.ts);
 * - `http`: /metrics, /healthz and the credentials admin API (admin.ts);
 * - `tls`, `limits`, `allowAnonymous`: passed to the broker (gateway.ts).
 *
 * The factory opens nothing. start() reads the TLS files first (a missing one then leaves
 * nothing open), then brings the rest up in dependency order; stop() closes all of them in reverse,
 * including the Redis connections Aedes' own close() leaves open (docs/architecture.md#platform-notes).
 */
import { StopStack } from '../lib/lifecycle.ts';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { adminHttpLimits, type AdminHttpLimits } from './admin-limits.ts';
import type { LoginGuardOptions } from './login-guard.ts';
import type { ClusterBackend } from './cluster.ts';
import type { CredentialStore } from './credentials.ts';
import { GatewayErrors } from './errors.ts';
import { buildGateway, type Gateway, type GatewayLimits, type GatewayTlsOptions } from './gateway.ts';
import { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';
import type { StreamAppender } from './stream.ts';

export interface GatewayServiceSettings {
  mqtt: { host: string; port: number; maxPacketSizeBytes: number };
  /** File paths already resolved. */
  tls?: { host?: string; port: number; cert: string; key: string; ca?: string; clientCerts: 'none' | 'optional' | 'required' };
  limits: GatewayLimits & { drainTimeoutMs: number };
  redis?: { url: string; keyPrefix: string };
  stream?: { key: string; maxLen: number; partitions?: number };
  /** `limits`: the admin endpoint's timeouts and connection caps (admin.ts DEFAULT_ADMIN_HTTP_LIMITS when omitted). */
  http?: { host: string; port: number; limits?: Partial<AdminHttpLimits> };
  /** The password-check lane and failed-login backoff (login-guard.ts DEFAULT_LOGIN_GUARD when omitted). */
  logins?: LoginGuardOptions;
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
  /** The broker (after start()). */
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
  const streamKey = s.stream && s.redis ? `${s.redis.keyPrefix}${s.stream.key}` : undefined;
  let gateway: Gateway | undefined;
  if (s.stream && !s.redis) throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, 'stream needs redis: set redis.url');
  if (s.http) adminHttpLimits(s.http.limits); // refused here, before any listener opens

  /** Every step that can fail on the configuration runs before the first connection opens. */
  async function start(): Promise<GatewayServiceAddresses> {
    try {
      const tls = readTls(s.tls);
      let cluster: ClusterBackend | undefined;
      // Redis modules (ioredis, the Aedes persistence and emitter) load only when configured.
      if (s.redis) {
        const { buildClusterBackend } = await import('./cluster.ts');
        const c = cluster = buildClusterBackend({ url: s.redis.url, keyPrefix: s.redis.keyPrefix }, log.child({ mod: 'redis' }));
        stops.push(() => c.close());
        await c.ready().catch((err: Error) => {
          throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, `cannot reach redis at ${s.redis!.url}: ${err.message}`);
        });
      }
      let appender: StreamAppender | undefined;
      if (streamKey) {
        const { buildStreamAppender } = await import('./stream.ts');
        const a = appender = buildStreamAppender({ url: s.redis!.url, key: streamKey, maxLen: s.stream!.maxLen, partitions: s.stream!.partitions, brokerId, logger: log.child({ mod: 'stream' }) });
        stops.push(() => a.stop());
        await a.start().catch((err: Error) => {
          if (err instanceof CsError) throw err;
          throw new CsError(GatewayErrors.REDIS_UNAVAILABLE, `cannot reach redis at ${s.redis!.url}: ${err.message}`);
        });
      }
      const g = gateway = buildGateway({
        host: s.mqtt.host,
        port: s.mqtt.port,
        maxPacketSize: s.mqtt.maxPacketSizeBytes,
        drainTimeout: s.limits.drainTimeoutMs,
        limits: s.limits,
        tls,
        allowAnonymous: s.allowAnonymous,
        ...(s.logins ? { logins: s.logins } : {}),
        credentials: opts.credentials,
        logger: log,
        metrics,
        brokerId,
        ...(cluster ? { cluster: { persistence: cluster.persistence, mq: cluster.mq } } : {}),
        ...(appender ? { onPublishAuthorized: appendBeforePuback(appender) } : {}),
      });
      const at = await g.start();
      stops.push(() => g.stop());
      let http: string | undefined;
      if (s.http) {
        const { buildAdminApp } = await import('./admin.ts'); // Fastify only with an HTTP port
        const admin: FastifyInstance = await buildAdminApp({
          credentials: opts.credentials, metrics, adminToken: opts.adminToken, logger: log.child({ mod: 'admin' }),
          connections: () => g.stats().connections, limits: s.http.limits,
        });
        stops.push(() => admin.close());
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

  function appendBeforePuback(appender: StreamAppender): (identity: unknown, topic: string, payload: Buffer) => Promise<void> {
    return async (_identity, topic, payload) => {
      try {
        if (await appender.append(topic, payload)) metrics.streamAppends.inc();
      } catch (err) {
        metrics.streamErrors.inc();
        throw err;
      }
    };
  }

  async function stop(): Promise<void> {
    await stops.stopAll();
  }

  return {
    start,
    stop,
    get gateway(): Gateway {
      if (!gateway) throw new CsError(GatewayErrors.NOT_STARTED, 'gateway service not started');
      return gateway;
    },
    metrics,
  };
}

/** Reads the TLS files; a missing or unreadable one is a configuration error naming the file. */
function readTls(t: GatewayServiceSettings['tls']): GatewayTlsOptions | undefined {
  if (!t) return undefined;
  const read = (key: 'cert' | 'key' | 'ca', file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CsError(GatewayErrors.TLS_CONFIG, `cannot read tls.${key} ${file}: ${(err as Error).message}`, { file });
    }
  };
  return {
    host: t.host, port: t.port, cert: read('cert', t.cert), key: read('key', t.key),
    ...(t.ca ? { ca: read('ca', t.ca) } : {}), clientCerts: t.clientCerts,
  };
}
