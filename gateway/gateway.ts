/**
 * The MQTT broker of CitySteward: Aedes behind a TCP listener, deny by default.
 *
 * - CONNECT: username and password required (CONNACK 4 when missing), checked against
 *   the credential store (CONNACK 5 for unknown, wrong or revoked: indistinguishable);
 *   a Will outside the identity's publish ACL is refused (CONNACK 5). Every refusal is
 *   logged with username, client id and remote address, never the password.
 * - Client ids are scoped to the username (`{username}:{client id}` inside the broker),
 *   so one identity can neither take over nor wipe another identity's session.
 * - PUBLISH / Will: ACL (acl.ts); a refused publish closes the connection (MQTT-3.3.5-2).
 *   The optional onPublishAuthorized hook runs before the PUBACK (see docs/architecture.md#platform-notes).
 * - SUBSCRIBE: ACL; a refused filter gets 0x80 in the SUBACK.
 * - Delivery: a message reaches a client only on a topic its ACL lets it subscribe to.
 * - Revoking a credential closes its live connections, also when the revocation is
 *   written to the credentials file by another process (the file is watched).
 * - Packets larger than maxPacketSize close the connection before the payload is buffered.
 * - Limits (all optional here; the service config gives sensible defaults): connections open
 *   at once and accepted per second on the listeners (over them: the socket is closed at
 *   once), PUBLISH packets per second per client (over it: the client's packets are read
 *   later, i.e. TCP back-pressure on that client alone), drainTimeout for frozen readers.
 * - TLS listener (optional) beside the plain one; with client certificates ('optional' or
 *   'required') a verified certificate's subject CN names the identity, which must be a
 *   live credential in the store (so revoking it closes certificate connections too).
 * - Shared state (optional): persistence and emitter from cluster.ts for several brokers.
 * - allowAnonymous (development only): a CONNECT without credentials gets the `anonymous`
 *   identity (the cs/v1 tree, never $-topics); a loud warning is logged at start.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type ConnectPacket,
  type PublishPacket, type Subscription,
} from 'aedes';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import { canPublish, canReceive, checkPublish, checkSubscribe } from './acl.ts';
import { throttled, tokenBucket, type TokenBucket } from './limits.ts';
import type { DropReason, GatewayMetrics } from './metrics.ts';
import { type CredentialStore, type Identity } from './credentials.ts';
import { GatewayErrors } from './errors.ts';

export { openCredentialStore } from './credentials.ts';

export interface GatewayOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (the default) picks any free port. */
  port?: number;
  credentials: CredentialStore;
  logger?: Logger;
  /** Largest MQTT packet accepted, header included; default 256 KiB. */
  maxPacketSize?: number;
  /** Aedes drainTimeout: ms a frozen subscriber may block before it is disconnected; default 60 s. */
  drainTimeout?: number;
  /** Watch the credentials file and apply changes made by other processes; default true for a file store. */
  watchCredentials?: boolean;
  /**
   * Called for every authorized PUBLISH (and Will) before it is acknowledged and routed;
   * a rejection refuses the message (no PUBACK, connection closed, the client resends).
   */
  onPublishAuthorized?: (identity: Identity, topic: string, payload: Buffer) => Promise<void>;
  /** Connection and publish limits; each is off when omitted. */
  limits?: GatewayLimits;
  /** A TLS listener beside the plain one. */
  tls?: GatewayTlsOptions;
  /** Development only: accept CONNECTs without credentials as the `anonymous` identity. */
  allowAnonymous?: boolean;
  /** Shared persistence and emitter (cluster.ts); memory when omitted. The gateway does not close them. */
  cluster?: { persistence: unknown; mq: unknown };
  /** Aedes broker id (default: a random UUID). */
  brokerId?: string;
  /** Prometheus counters (metrics.ts); kept in memory only when omitted. */
  metrics?: GatewayMetrics;
  /** Clock for the rate limits, ms. */
  now?: () => number;
}

export interface GatewayLimits {
  /** Sockets open at once over all listeners (authenticated or not). */
  maxConnections?: number;
  /** New sockets accepted per second over all listeners, with a burst of connectionBurst. */
  connectionsPerSecond?: number;
  connectionBurst?: number;
  /** PUBLISH packets per second per client, with a burst of publishBurst; excess is delayed. */
  publishesPerSecond?: number;
  publishBurst?: number;
}

export interface GatewayTlsOptions {
  host?: string;
  /** Port of the TLS listener; 0 = any free port. */
  port?: number;
  /** PEM server certificate chain and private key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle that client certificates must chain to (needed for clientCerts). */
  ca?: string | Buffer;
  /** 'none' (default): password only; 'optional': a certificate or a password; 'required': a certificate. */
  clientCerts?: 'none' | 'optional' | 'required';
}

export interface GatewayStats {
  /** Authenticated connections now open. */
  connections: number;
  /** Refused CONNECTs since start. */
  authFailures: number;
  /** Refused PUBLISH, SUBSCRIBE, Will and deliveries since start. */
  denied: number;
  /** Authorized PUBLISH packets (and Wills) since start. */
  messages: number;
  /** Connections closed by a limit or a fault (too large, frozen, over a connection limit). */
  dropped: number;
}

export interface GatewayAddress {
  host: string;
  port: number;
  /** The TLS listener's port, when one is configured. */
  tlsPort?: number;
}

export interface Gateway {
  start(): Promise<GatewayAddress>;
  stop(): Promise<void>;
  /** The bound port (after start). */
  readonly port: number;
  /** The bound TLS port (after start), undefined without TLS. */
  readonly tlsPort: number | undefined;
  /** The Aedes instance (after start). */
  readonly broker: Aedes;
  stats(): GatewayStats;
  /** The identity an authenticated client connected with. */
  identityOf(client: Client): Identity | undefined;
}

export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024;

/** MQTT CONNACK return codes (3.1.1, table 3.1). */
const CONNACK = { IDENTIFIER_REJECTED: 2, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

/** The identity of CONNECTs without credentials when allowAnonymous is on (development only). */
export const ANONYMOUS: Identity = Object.freeze({ username: 'anonymous', role: 'anonymous', createdAt: new Date(0).toISOString() });

interface ConnectAttempt {
  client: Client;
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  remote: string;
  will: PublishPacket | undefined;
  /** Subject CN of a verified client certificate (mutual TLS). */
  certName: string | undefined;
  identity?: Identity;
}

type ConnectStep = (attempt: ConnectAttempt) => void | Promise<void>;

export function buildGateway(opts: GatewayOptions): Gateway {
  const store = opts.credentials;
  const log = opts.logger ?? silentLogger();
  const host = opts.host ?? '127.0.0.1';
  const wantedPort = opts.port ?? 0;
  const maxPacketSize = opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  const hook = opts.onPublishAuthorized;
  const now = opts.now ?? Date.now;
  const limits = opts.limits ?? {};
  const metrics = opts.metrics;

  let broker: Aedes | undefined;
  let server: Server | undefined;
  let tlsServer: TlsServer | undefined;
  let boundPort: number | undefined;
  let boundTlsPort: number | undefined;
  let watcher: FSWatcher | undefined;
  let reloadTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const sockets = new Set<Socket>();
  /** Authenticated clients still connected. */
  const live = new Set<Client>();
  const identities = new WeakMap<Client, Identity>();
  const remotes = new WeakMap<Client, string>();
  /** The Will of a CONNECT, kept by preConnect for authenticate (which does not get the packet). */
  const wills = new WeakMap<Client, PublishPacket>();
  /** Subject CN of the verified client certificate of a TLS connection. */
  const certNames = new WeakMap<Client, string>();
  const publishBuckets = new WeakMap<Client, TokenBucket>();
  const delayTimers = new Set<NodeJS.Timeout>();
  const drained = new WeakSet<Client>();
  const counters = { authFailures: 0, denied: 0, messages: 0, dropped: 0 };
  const connectionBucket = limits.connectionsPerSecond
    ? tokenBucket({ ratePerSecond: limits.connectionsPerSecond, burst: limits.connectionBurst, now })
    : undefined;
  const warnOnce = new Map<string, (fn: () => void) => boolean>();

  function deny(kind: 'publish' | 'subscribe' | 'will' | 'forward'): void {
    counters.denied++;
    metrics?.denied.inc({ kind });
  }

  function drop(reason: DropReason, details: Record<string, unknown>, message: string): void {
    counters.dropped++;
    metrics?.drops.inc({ reason });
    // Under a flood, one line per second per reason; the counters keep the full count.
    let t = warnOnce.get(reason);
    if (!t) warnOnce.set(reason, (t = throttled(1000, now)));
    t(() => log.warn({ reason, ...details, dropped: counters.dropped }, message));
  }

  // ---- CONNECT: a pipeline of named steps ------------------------------------------------

  const connectSteps: ConnectStep[] = [requireCredentials, verifyCredential, checkWill, scopeClientId, bindIdentity];

  function requireCredentials(a: ConnectAttempt): void {
    if (a.certName !== undefined) return; // the certificate names the identity
    if (!a.username && (a.password === undefined || a.password.length === 0) && opts.allowAnonymous) return;
    if (!a.username || a.password === undefined || a.password.length === 0) {
      throw refusal(CONNACK.BAD_USERNAME_OR_PASSWORD, GatewayErrors.AUTH_MISSING, 'username and password required');
    }
  }

  async function verifyCredential(a: ConnectAttempt): Promise<void> {
    if (a.certName !== undefined) {
      if (a.username && a.username !== a.certName) {
        throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.CERT_MISMATCH, 'username differs from the certificate subject', { certName: a.certName });
      }
      const identity = store.get(a.certName);
      if (!identity || identity.revokedAt) {
        throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'certificate subject is not a live credential', { certName: a.certName });
      }
      a.identity = identity;
      return;
    }
    if (!a.username && opts.allowAnonymous) {
      a.identity = ANONYMOUS;
      return;
    }
    a.identity = await store.verify(a.username!, a.password!);
    if (!a.identity) throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'unknown username, wrong password or revoked credential');
  }

  function checkWill(a: ConnectAttempt): void {
    if (!a.will) return;
    const d = checkPublish(a.identity, a.will.topic);
    if (!d.allowed) {
      deny('will');
      throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.WILL_DENIED, `will refused: ${d.reason}`, { willTopic: a.will.topic });
    }
  }

  /** Sessions live per identity: `{username}:{client id}` (a username never holds `:`). */
  function scopeClientId(a: ConnectAttempt): void {
    (a.client as { id: string }).id = `${a.identity!.username}:${a.clientId}`;
  }

  function bindIdentity(a: ConnectAttempt): void {
    if (a.identity !== ANONYMOUS && store.get(a.identity!.username)?.revokedAt) {
      throw refusal(CONNACK.NOT_AUTHORIZED, GatewayErrors.AUTH_FAILED, 'credential revoked during authentication');
    }
    identities.set(a.client, a.identity!);
    // Gone while scrypt ran: Aedes drops the attempt; keep it out of the live set.
    if (a.client.closed || a.client.conn.destroyed) return;
    live.add(a.client);
    metrics?.connections.inc();
    metrics?.connectionsTotal.inc();
    a.client.conn.once('close', () => {
      if (live.delete(a.client)) metrics?.connections.dec();
    });
    if (limits.publishesPerSecond) {
      publishBuckets.set(a.client, tokenBucket({ ratePerSecond: limits.publishesPerSecond, burst: limits.publishBurst, now }));
    }
  }

  function preConnect(client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void {
    if (packet.will) wills.set(client, packet.will as PublishPacket);
    done(null, true);
  }

  function authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const attempt: ConnectAttempt = {
      client,
      clientId: client.id,
      username: typeof username === 'string' ? username : undefined,
      password: password === undefined || password === null ? undefined : Buffer.from(password),
      remote: remotes.get(client) ?? 'unknown',
      will: wills.get(client),
      certName: certNames.get(client),
    };
    wills.delete(client);
    runSteps(connectSteps, attempt).then(
      () => {
        log.info({ username: attempt.username, clientId: attempt.clientId, remote: attempt.remote, role: attempt.identity!.role }, 'mqtt client authenticated');
        done(null, true);
      },
      (err: AuthenticateError & CsError) => {
        counters.authFailures++;
        metrics?.authFailures.inc({ code: err instanceof CsError ? err.code : 'internal' });
        if (!(err instanceof CsError)) {
          log.error({ err, username: attempt.username, remote: attempt.remote }, 'mqtt authentication failed unexpectedly');
          done(Object.assign(new Error('server unavailable'), { returnCode: 3 }) as AuthenticateError, false);
          return;
        }
        log.warn({
          username: attempt.username ?? null, clientId: attempt.clientId, remote: attempt.remote,
          code: err.code, returnCode: err.returnCode, reason: err.message, ...err.details,
        }, 'mqtt connection refused');
        done(err, false);
      },
    );
  }

  // ---- PUBLISH, SUBSCRIBE, delivery ------------------------------------------------------

  function authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const identity = client ? identities.get(client) : identityOfStoredWill(packet);
    if (!canPublish(identity, packet.topic)) {
      const d = checkPublish(identity, packet.topic);
      deny('publish');
      log.warn({
        username: identity?.username ?? null, clientId: client?.id ?? (packet as { clientId?: string }).clientId,
        remote: client ? remotes.get(client) : undefined, topic: packet.topic, reason: d.reason,
      }, 'mqtt publish refused');
      done(new CsError(GatewayErrors.PUBLISH_DENIED, `publish refused: ${d.reason}`, { topic: packet.topic }));
      return;
    }
    counters.messages++;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    metrics?.messages.inc({ qos: String(packet.qos) });
    metrics?.bytesIn.inc(payload.length);
    const bucket = client ? publishBuckets.get(client) : undefined;
    const wait = bucket ? bucket.take() : 0;
    if (wait > 0) {
      // Over its rate: hold this client's packet (Aedes reads its next ones only after).
      metrics?.publishDelayed.inc();
      const timer = setTimeout(() => {
        delayTimers.delete(timer);
        runHook(identity!, packet, payload, done);
      }, wait);
      delayTimers.add(timer);
      return;
    }
    runHook(identity!, packet, payload, done);
  }

  function runHook(identity: Identity, packet: PublishPacket, payload: Buffer, done: (err?: Error | null) => void): void {
    if (!hook) return done(null);
    let pending: Promise<void>;
    try {
      pending = hook(identity, packet.topic, payload);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      () => done(null),
      (err: Error) => {
        log.error({ err, username: identity.username, topic: packet.topic }, 'publish refused by the ingest hook');
        done(new CsError(GatewayErrors.INGEST_FAILED, `ingest failed: ${err?.message ?? String(err)}`, { topic: packet.topic }));
      },
    );
  }

  /** A Will persisted by an earlier connection, published with no client: judged by its owner's current identity. */
  function identityOfStoredWill(packet: PublishPacket): Identity | undefined {
    const clientId = (packet as { clientId?: string }).clientId;
    if (typeof clientId !== 'string' || !clientId.includes(':')) return undefined;
    return store.get(clientId.slice(0, clientId.indexOf(':')));
  }

  function authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const identity = identities.get(client);
    const d = checkSubscribe(identity, sub.topic);
    if (d.allowed) return done(null, sub);
    deny('subscribe');
    log.warn({ username: identity?.username ?? null, clientId: client.id, remote: remotes.get(client), filter: sub.topic, reason: d.reason },
      'mqtt subscribe refused');
    done(null, null); // SUBACK 0x80 for this filter; the connection stays
  }

  function authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    if (canReceive(identities.get(client), packet.topic)) return packet;
    deny('forward');
    log.debug({ clientId: client.id, topic: packet.topic }, 'mqtt delivery withheld');
    return null;
  }

  // ---- revocation ------------------------------------------------------------------------

  function onRevoked(username: string): void {
    for (const client of live) {
      const identity = identities.get(client);
      if (identity?.username !== username) continue;
      // Deny at once whatever is already parsed, then close.
      identities.set(client, { ...identity, revokedAt: identity.revokedAt ?? new Date().toISOString() });
      log.warn({ username, clientId: client.id, remote: remotes.get(client) }, 'credential revoked: closing its connection');
      live.delete(client);
      client.close();
    }
  }

  function watchCredentialFile(): void {
    const file = store.file;
    if (!file || opts.watchCredentials === false) return;
    const name = basename(file);
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(reloadCredentials, 50);
      });
      watcher.on('error', (err) => log.error({ err, file }, 'credentials watcher failed; changes by other processes need a restart'));
    } catch (err) {
      log.warn({ err, file }, 'cannot watch the credentials file; changes by other processes need a restart');
    }
  }

  function reloadCredentials(): void {
    reloadTimer = undefined;
    try {
      store.reload();
    } catch (err) {
      log.error({ err }, 'credentials file changed but cannot be used; keeping the credentials in memory');
    }
  }

  // ---- the listener ----------------------------------------------------------------------

  function admit(socket: Socket): boolean {
    if (!broker || broker.closed) {
      socket.destroy();
      return false;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (limits.maxConnections !== undefined && sockets.size >= limits.maxConnections) {
      drop('max-connections', { remote, maxConnections: limits.maxConnections }, 'mqtt connection refused: too many connections');
      socket.destroy();
      return false;
    }
    if (connectionBucket && !connectionBucket.tryTake()) {
      drop('connection-rate', { remote, connectionsPerSecond: limits.connectionsPerSecond }, 'mqtt connection refused: connection rate exceeded');
      socket.destroy();
      return false;
    }
    return true;
  }

  function onConnection(socket: Socket): void {
    if (!admit(socket)) return;
    serve(socket);
  }

  /** A TLS socket counts against the limits from its TCP accept, before the handshake. */
  function onTlsTcpConnection(socket: Socket): void {
    if (!admit(socket)) return;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  }

  function onSecureConnection(socket: TLSSocket): void {
    if (!broker || broker.closed) {
      socket.destroy();
      return;
    }
    let certName: string | undefined;
    const mode = opts.tls?.clientCerts ?? 'none';
    if (mode !== 'none') {
      const cert = socket.getPeerCertificate();
      const presented = cert && Object.keys(cert).length > 0;
      if (presented) {
        const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
        if (!socket.authorized || !cn) {
          counters.authFailures++;
          metrics?.authFailures.inc({ code: GatewayErrors.CERT_INVALID });
          log.warn({ remote: `${socket.remoteAddress}:${socket.remotePort}`, code: GatewayErrors.CERT_INVALID,
            reason: socket.authorizationError ? String(socket.authorizationError) : 'certificate without a subject CN' }, 'mqtt connection refused');
          socket.destroy();
          return;
        }
        certName = cn;
      }
    }
    serve(socket, certName, true);
  }

  /** Hands a socket to Aedes; a TLS socket's TCP socket is already counted in `sockets`. */
  function serve(socket: Socket, certName?: string, counted = false): void {
    if (!counted) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const client = broker!.handle(socket);
    remotes.set(client, remote);
    if (certName !== undefined) certNames.set(client, certName);
    try {
      guardPacketSize(client, maxPacketSize, (size) => {
        counters.denied++;
        drop('packet-too-large', { username: identities.get(client)?.username ?? null, remote, size, maxPacketSize }, 'mqtt packet too large: closing the connection');
      });
    } catch (err) {
      log.error({ err, remote }, 'cannot guard the packet size: refusing the connection');
      socket.destroy();
    }
  }

  async function start(): Promise<GatewayAddress> {
    if (broker) throw new CsError(GatewayErrors.ALREADY_STARTED, 'gateway already started');
    if (opts.tls?.clientCerts && opts.tls.clientCerts !== 'none' && !opts.tls.ca) {
      throw new CsError(GatewayErrors.TLS_CONFIG, 'client certificates need a CA bundle (tls.ca)');
    }
    broker = await Aedes.createBroker({
      ...(opts.cluster ? { persistence: opts.cluster.persistence, mq: opts.cluster.mq } as object : {}),
      ...(opts.brokerId ? { id: opts.brokerId } : {}),
      preConnect,
      authenticate,
      authorizePublish,
      authorizeSubscribe,
      authorizeForward,
      ...(opts.drainTimeout !== undefined ? { drainTimeout: opts.drainTimeout } : {}),
    });
    broker.on('clientError', (client: Client, err: Error) => {
      if (err.message === 'drain timeout') {
        // Every write pending on the frozen socket reports it: count the client once.
        if (drained.has(client)) return;
        drained.add(client);
        drop('drain-timeout', { clientId: client.id, remote: remotes.get(client), drainTimeout: opts.drainTimeout }, 'mqtt client stopped reading: disconnected');
        return;
      }
      log.debug({ clientId: client.id, remote: remotes.get(client), err: err.message }, 'mqtt client error');
    });
    broker.on('connectionError', (client: Client, err: Error) => {
      log.debug({ remote: remotes.get(client), err: err.message }, 'mqtt connection error');
    });
    const srv = createServer({ noDelay: true }, onConnection);
    server = srv;
    const tlsOpts = opts.tls;
    let tsrv: ReturnType<typeof createTlsServer> | undefined;
    try {
      // Inside the try: a certificate or key that is not valid PEM throws here, and the broker must close.
      tsrv = tlsOpts ? createTlsServer({
        cert: tlsOpts.cert, key: tlsOpts.key, ...(tlsOpts.ca ? { ca: tlsOpts.ca } : {}),
        requestCert: (tlsOpts.clientCerts ?? 'none') !== 'none',
        rejectUnauthorized: tlsOpts.clientCerts === 'required',
        minVersion: 'TLSv1.2',
        handshakeTimeout: 10_000,
      }, onSecureConnection) : undefined;
      tlsServer = tsrv;
      await listen(srv, wantedPort, host);
      if (tsrv) {
        tsrv.on('connection', onTlsTcpConnection);
        tsrv.on('tlsClientError', (err, socket) => {
          drop('tls-handshake', { remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'mqtt tls handshake failed');
        });
        await listen(tsrv, tlsOpts!.port ?? 0, tlsOpts!.host ?? host);
      }
    } catch (err) {
      // Leave nothing behind; the error keeps its errno code (EADDRINUSE, EACCES).
      if (srv.listening) await new Promise<void>((r) => srv.close(() => r()));
      await closeBroker();
      broker = undefined;
      server = undefined;
      tlsServer = undefined;
      throw err;
    }
    srv.on('error', (err) => log.error({ err }, 'mqtt listener error'));
    tsrv?.on('error', (err) => log.error({ err }, 'mqtts listener error'));
    boundPort = (srv.address() as AddressInfo).port;
    boundTlsPort = tsrv ? (tsrv.address() as AddressInfo).port : undefined;
    store.on('revoked', onRevoked);
    watchCredentialFile();
    if (opts.allowAnonymous) {
      log.warn({ host, port: boundPort }, 'ANONYMOUS ACCESS IS ON (development switch allowAnonymous): any client without credentials may publish and subscribe in cs/v1/#. Never use this in production.');
    }
    log.info({ host, port: boundPort, tlsPort: boundTlsPort, clientCerts: tlsOpts?.clientCerts, maxPacketSize, limits, cluster: Boolean(opts.cluster) }, 'mqtt gateway listening');
    return { host, port: boundPort, ...(boundTlsPort !== undefined ? { tlsPort: boundTlsPort } : {}) };
  }

  async function closeBroker(): Promise<void> {
    const b = broker;
    if (!b) return;
    await new Promise<void>((r) => b.close(() => r()));
  }

  async function stop(): Promise<void> {
    if (!server) return;
    stopping ??= (async () => {
      store.off('revoked', onRevoked);
      watcher?.close();
      watcher = undefined;
      clearTimeout(reloadTimer);
      reloadTimer = undefined;
      for (const t of delayTimers) clearTimeout(t);
      delayTimers.clear();
      const srv = server!;
      const closed = new Promise<void>((r) => srv.close(() => r()));
      const tsrv = tlsServer;
      const tlsClosed = tsrv ? new Promise<void>((r) => tsrv.close(() => r())) : Promise.resolve();
      await closeBroker();
      for (const s of sockets) s.destroy();
      await closed;
      await tlsClosed;
      if (live.size) metrics?.connections.dec(live.size);
      live.clear();
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
      if (!broker) throw new CsError(GatewayErrors.NOT_STARTED, 'gateway not started');
      return broker;
    },
    stats: () => ({ connections: live.size, ...counters }),
    identityOf: (client) => identities.get(client),
  };
}

function listen(srv: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolveListen, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => {
      srv.off('error', reject);
      resolveListen();
    });
  });
}

async function runSteps(steps: ConnectStep[], attempt: ConnectAttempt): Promise<void> {
  for (const step of steps) await step(attempt);
}

function refusal(returnCode: number, code: string, message: string, details?: Record<string, unknown>): CsError & AuthenticateError {
  return Object.assign(new CsError(code, message, details), { returnCode }) as CsError & AuthenticateError;
}

/**
 * Closes a connection whose next packet is larger than `max` bytes as soon as its fixed
 * header is read, before the payload is buffered. Aedes 1.2 gives no option for this, so
 * it wraps the remaining-length step of the client's mqtt-packet parser; the test
 * "refuses a packet larger than maxPacketSize" fails if that parser ever changes shape.
 */
function guardPacketSize(client: Client, max: number, onTooLarge: (size: number) => void): void {
  interface ParserInternals {
    packet: { length: number };
    _parseLength: () => boolean;
    _emitError: (err: Error) => void;
  }
  const parser = (client as unknown as { _parser?: ParserInternals })._parser;
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') {
    throw new Error('aedes client parser has an unexpected shape: cannot enforce maxPacketSize');
  }
  const parseLength = parser._parseLength;
  parser._parseLength = function guardedParseLength(this: ParserInternals): boolean {
    const ok = parseLength.call(this);
    if (!ok) return ok;
    const remaining = this.packet.length;
    const size = 1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining;
    if (size <= max) return ok;
    onTooLarge(size);
    this._emitError(new CsError(GatewayErrors.PACKET_TOO_LARGE, `packet of ${size} bytes exceeds ${max}`, { size, max }));
    return false;
  };
}
