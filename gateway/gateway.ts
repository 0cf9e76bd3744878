/**
 * The MQTT broker of CitySteward: Aedes behind a TCP listener, deny by default. This file
 * assembles it; each concern has its file, in the style of aedes `lib/handlers/`:
 *
 * - handlers/connect.ts    CONNECT: credentials, certificates, Will, client-id scoping
 * - handlers/publish.ts    PUBLISH and Wills: ACL, counting, pacing, the pre-PUBACK hook
 * - handlers/subscribe.ts  SUBSCRIBE: ACL, 0x80 per refused filter
 * - handlers/forward.ts    delivery: only on topics the receiver may subscribe to
 * - mq-depth.ts            the emitter's queue walked without recursion (a burst overflowed the stack)
 * - revocation.ts          a revoked credential's connections closed (also from the file)
 * - listeners.ts           TCP and TLS listeners, connection limits, packet-size guard
 * - context.ts             what they share; types.ts the options and the handle
 *
 * Shared state (optional): persistence and emitter from cluster.ts for several brokers.
 * allowAnonymous (development only): a CONNECT without credentials gets the `anonymous`
 * identity (the cs/v1 tree, never $-topics); a loud warning is logged at start.
 */
import { createRequire } from 'node:module';
import { Aedes, type Client } from 'aedes';
import { CsError } from '../lib/errors.ts';
import { createContext } from './context.ts';
import { GatewayErrors } from './errors.ts';
import { connectHandlers } from './handlers/connect.ts';
import { forwardHandler } from './handlers/forward.ts';
import { publishHandler } from './handlers/publish.ts';
import { subscribeHandler } from './handlers/subscribe.ts';
import { listeners } from './listeners.ts';
import { boundDispatchDepth } from './mq-depth.ts';
import { revocation } from './revocation.ts';
import type { Gateway, GatewayAddress, GatewayOptions } from './types.ts';

export { openCredentialStore } from './credentials.ts';
export {
  ANONYMOUS, DEFAULT_MAX_PACKET_SIZE,
  type Gateway, type GatewayAddress, type GatewayLimits, type GatewayOptions, type GatewayStats, type GatewayTlsOptions,
} from './types.ts';

/**
 * mqtt-packet (the instance Aedes loads) fills a cache of 65,536 two-byte Buffers, about 6.5 MiB of heap, at
 * its first write unless told not to before it (its README, `writeToStream.cacheNumbers`); a packet id
 * then costs one small allocation per write (docs/architecture.md#broker-memory).
 */
export function disableNumberCache(): void {
  const mqttPacket = createRequire(import.meta.resolve('aedes'))('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };
  mqttPacket.writeToStream.cacheNumbers = false;
}

export function buildGateway(opts: GatewayOptions): Gateway {
  const ctx = createContext(opts);
  const { log, metrics } = ctx;
  const connect = connectHandlers(ctx);
  const authorizePublish = publishHandler(ctx, connect.publishBuckets);
  const authorizeSubscribe = subscribeHandler(ctx);
  const authorizeForward = forwardHandler(ctx);
  const revoke = revocation(ctx);
  const net = listeners(ctx, connect.certNames);
  const drained = new WeakSet<Client>();

  let boundPort: number | undefined;
  let boundTlsPort: number | undefined;
  let started = false;
  let stopping: Promise<void> | undefined;

  function watchBroker(broker: Aedes): void {
    broker.on('clientError', (client: Client, err: Error) => {
      if (err.message === 'drain timeout') {
        // Every write pending on the frozen socket reports it: count the client once.
        if (drained.has(client)) return;
        drained.add(client);
        ctx.drop('drain-timeout', { clientId: client.id, remote: ctx.remotes.get(client), drainTimeout: opts.drainTimeout }, 'mqtt client stopped reading: disconnected');
        return;
      }
      log.debug({ clientId: client.id, remote: ctx.remotes.get(client), err: err.message }, 'mqtt client error');
    });
    broker.on('connectionError', (client: Client, err: Error) => {
      log.debug({ remote: ctx.remotes.get(client), err: err.message }, 'mqtt connection error');
    });
  }

  async function start(): Promise<GatewayAddress> {
    if (ctx.broker) throw new CsError(GatewayErrors.ALREADY_STARTED, 'gateway already started');
    if (opts.tls?.clientCerts && opts.tls.clientCerts !== 'none' && !opts.tls.ca) {
      throw new CsError(GatewayErrors.TLS_CONFIG, 'client certificates need a CA bundle (tls.ca)');
    }
    disableNumberCache();
    const broker = await Aedes.createBroker({
      ...(opts.cluster ? { persistence: opts.cluster.persistence, mq: opts.cluster.mq } as object : {}),
      ...(opts.brokerId ? { id: opts.brokerId } : {}),
      preConnect: connect.preConnect,
      authenticate: connect.authenticate,
      authorizePublish,
      authorizeSubscribe,
      authorizeForward,
      ...(opts.drainTimeout !== undefined ? { drainTimeout: opts.drainTimeout } : {}),
    });
    // A burst of unsubscribed messages queued in the emitter overflowed the stack (mq-depth.ts).
    boundDispatchDepth((broker as unknown as { mq: unknown }).mq);
    ctx.broker = broker;
    watchBroker(broker);
    try {
      ({ port: boundPort, tlsPort: boundTlsPort } = await net.start());
    } catch (err) {
      // Leave nothing behind; the error keeps its errno code (EADDRINUSE, EACCES).
      await closeBroker();
      ctx.broker = undefined;
      throw err;
    }
    started = true;
    revoke.start();
    const host = opts.host ?? '127.0.0.1';
    if (opts.allowAnonymous) {
      log.warn({ host, port: boundPort }, 'ANONYMOUS ACCESS IS ON (development switch allowAnonymous): any client without credentials may publish and subscribe in cs/v1/#. Never use this in production.');
    }
    log.info({ host, port: boundPort, tlsPort: boundTlsPort, clientCerts: opts.tls?.clientCerts, maxPacketSize: ctx.maxPacketSize,
      limits: ctx.limits, cluster: Boolean(opts.cluster) }, 'mqtt gateway listening');
    return { host, port: boundPort, ...(boundTlsPort !== undefined ? { tlsPort: boundTlsPort } : {}) };
  }

  async function closeBroker(): Promise<void> {
    const b = ctx.broker;
    if (!b) return;
    await new Promise<void>((r) => b.close(() => r()));
  }

  async function stop(): Promise<void> {
    if (!started) return;
    stopping ??= (async () => {
      revoke.stop();
      for (const t of ctx.timers) clearTimeout(t);
      ctx.timers.clear();
      const closed = net.close();
      await closeBroker();
      net.destroySockets();
      await closed;
      ctx.flushWarnings();
      if (ctx.live.size) metrics?.connections.dec(ctx.live.size);
      ctx.live.clear();
      log.info({ port: boundPort }, 'mqtt gateway stopped');
    })();
    return stopping;
  }

  return {
    start,
    stop,
    get port(): number {
      if (boundPort === undefined) throw new CsError(GatewayErrors.NOT_STARTED, 'gateway not started');
      return boundPort;
    },
    get tlsPort(): number | undefined {
      return boundTlsPort;
    },
    get broker(): Aedes {
      if (!ctx.broker) throw new CsError(GatewayErrors.NOT_STARTED, 'gateway not started');
      return ctx.broker;
    },
    stats: () => ({ connections: ctx.live.size, ...ctx.counters }),
    identityOf: (client) => ctx.identities.get(client),
  };
}
