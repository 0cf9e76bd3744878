/**
 * The broker's TCP listener and its optional TLS listener beside it. Before a socket
 * reaches Aedes it is admitted against the connection limits (sockets open at once,
 * accepted per second; over them the socket is closed at once); a TLS socket counts from
 * its TCP accept, before the handshake. With client certificates ('optional' or
 * 'required') a verified certificate's subject CN names the identity (handlers/connect.ts).
 * Every socket handed to Aedes gets the packet-size guard (packet-size.ts).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Client } from 'aedes';
import { GatewayErrors } from './errors.ts';
import type { GatewayContext } from './context.ts';
import { tokenBucket } from './limits.ts';
import { packetSizeGuard } from './packet-size.ts';

export interface Listeners {
  /** Binds the listeners; on failure closes what it opened and throws (errno codes kept). */
  start(): Promise<{ port: number; tlsPort: number | undefined }>;
  /** Stops accepting new sockets; settles once the open ones are gone too. */
  close(): Promise<void>;
  /** Destroys every socket, authenticated or not. */
  destroySockets(): void;
}

export function listeners(ctx: GatewayContext, certNames: WeakMap<Client, string>): Listeners {
  const { log, metrics, limits, opts } = ctx;
  const host = opts.host ?? '127.0.0.1';
  let server: Server | undefined;
  let tlsServer: Server | undefined;
  const connectionBucket = limits.connectionsPerSecond
    ? tokenBucket({ ratePerSecond: limits.connectionsPerSecond, burst: limits.connectionBurst, now: ctx.now })
    : undefined;

  function admit(socket: Socket): boolean {
    if (!ctx.broker || ctx.broker.closed) {
      socket.destroy();
      return false;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (limits.maxConnections !== undefined && ctx.sockets.size >= limits.maxConnections) {
      ctx.drop('max-connections', { remote, maxConnections: limits.maxConnections }, 'mqtt connection refused: too many connections');
      socket.destroy();
      return false;
    }
    if (connectionBucket && !connectionBucket.tryTake()) {
      ctx.drop('connection-rate', { remote, connectionsPerSecond: limits.connectionsPerSecond }, 'mqtt connection refused: connection rate exceeded');
      socket.destroy();
      return false;
    }
    return true;
  }

  function track(socket: Socket): void {
    ctx.sockets.add(socket);
    socket.on('close', untrack); // shared, not a closure per socket
  }

  function untrack(this: Socket): void {
    ctx.sockets.delete(this);
  }

  function onConnection(socket: Socket): void {
    if (!admit(socket)) return;
    track(socket);
    serve(socket);
  }

  function onTlsTcpConnection(socket: Socket): void {
    if (admit(socket)) track(socket);
  }

  function onSecureConnection(socket: TLSSocket): void {
    if (!ctx.broker || ctx.broker.closed) {
      socket.destroy();
      return;
    }
    let certName: string | undefined;
    if ((opts.tls?.clientCerts ?? 'none') !== 'none') {
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) {
        const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
        if (!socket.authorized || !cn) {
          ctx.counters.authFailures++;
          metrics?.authFailures.inc({ code: GatewayErrors.CERT_INVALID });
          ctx.warn(socket.remoteAddress ?? 'unknown', { remote: `${socket.remoteAddress}:${socket.remotePort}`, code: GatewayErrors.CERT_INVALID,
            reason: socket.authorizationError ? String(socket.authorizationError) : 'certificate without a subject CN' }, 'mqtt connection refused');
          socket.destroy();
          return;
        }
        certName = cn;
      }
    }
    serve(socket, certName);
  }

  const guardPacketSize = packetSizeGuard(ctx.maxPacketSize, (client, size) => {
    ctx.counters.denied++;
    ctx.drop('packet-too-large', { username: client ? ctx.identities.get(client)?.username ?? null : null,
      remote: client ? ctx.remotes.get(client) : undefined, size, maxPacketSize: ctx.maxPacketSize }, 'mqtt packet too large: closing the connection');
  });

  /** Hands a counted socket to Aedes. */
  function serve(socket: Socket, certName?: string): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    batchWrites(socket);
    const client = ctx.broker!.handle(socket);
    ctx.remotes.set(client, remote);
    if (certName !== undefined) certNames.set(client, certName);
    try {
      guardPacketSize(client);
    } catch (err) {
      log.error({ err, remote }, 'cannot guard the packet size: refusing the connection');
      socket.destroy();
    }
  }

  async function start(): Promise<{ port: number; tlsPort: number | undefined }> {
    const tlsOpts = opts.tls;
    const srv = createServer({ noDelay: true }, onConnection);
    server = srv;
    let tsrv: Server | undefined;
    try {
      // Inside the try: a certificate or key that is not valid PEM throws here. node:tls is loaded only
      // when a TLS listener is configured: about 2 MiB of RSS otherwise (docs/architecture.md#broker-memory).
      tsrv = tlsOpts ? (await import('node:tls')).createServer({
        cert: tlsOpts.cert, key: tlsOpts.key, ...(tlsOpts.ca ? { ca: tlsOpts.ca } : {}),
        requestCert: (tlsOpts.clientCerts ?? 'none') !== 'none',
        rejectUnauthorized: tlsOpts.clientCerts === 'required',
        minVersion: 'TLSv1.2',
        handshakeTimeout: 10_000,
      }, onSecureConnection) : undefined;
      tlsServer = tsrv;
      await listen(srv, opts.port ?? 0, host);
      if (tsrv) {
        tsrv.on('connection', onTlsTcpConnection);
        tsrv.on('tlsClientError', (err: Error, socket: Socket) => {
          ctx.drop('tls-handshake', { remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message }, 'mqtt tls handshake failed');
        });
        await listen(tsrv, tlsOpts!.port ?? 0, tlsOpts!.host ?? host);
      }
    } catch (err) {
      if (srv.listening) await new Promise<void>((r) => srv.close(() => r()));
      server = undefined;
      tlsServer = undefined;
      throw err;
    }
    srv.on('error', (err) => log.error({ err }, 'mqtt listener error'));
    tsrv?.on('error', (err) => log.error({ err }, 'mqtts listener error'));
    return {
      port: (srv.address() as AddressInfo).port,
      tlsPort: tsrv ? (tsrv.address() as AddressInfo).port : undefined,
    };
  }

  /** Stops accepting; resolves once the listeners are closed, i.e. after destroySockets(). */
  function close(): Promise<void> {
    const srv = server;
    const tsrv = tlsServer;
    server = undefined;
    tlsServer = undefined;
    const closed = srv ? new Promise<void>((r) => srv.close(() => r())) : Promise.resolve();
    const tlsClosed = tsrv ? new Promise<void>((r) => tsrv.close(() => r())) : Promise.resolve();
    return Promise.all([closed, tlsClosed]).then(() => undefined);
  }

  function destroySockets(): void {
    for (const s of ctx.sockets) s.destroy();
  }

  return { start, close, destroySockets };
}

/** Pending connections the kernel may queue (capped by net.core.somaxconn): a reconnect storm overflows Node's 511 and waits for SYN retries. */
const LISTEN_BACKLOG = 8192;

function listen(srv: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolveListen, reject) => {
    srv.once('error', reject);
    srv.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      srv.off('error', reject);
      resolveListen();
    });
  });
}

/**
 * Fewer syscalls (docs/architecture.md#write-batching): the first write to a socket in a turn of
 * the event loop corks it, and a setImmediate uncorks it, so every PUBACK and delivery produced
 * for that socket meanwhile (e.g. by ingest hooks settling one by one) leaves in one writev.
 * mqtt-packet corks only until process.nextTick, which covers writes of one synchronous run.
 */
function batchWrites(socket: Socket): void {
  // A shared function, not a closure per socket: idle connections stay small.
  (socket as Socket & { write: unknown }).write = batchedWrite;
}

type Batched = Socket & { csCorked?: boolean };

function batchedWrite(this: Batched, ...args: unknown[]): boolean {
  if (!this.csCorked && !this.destroyed) {
    this.csCorked = true;
    this.cork();
    setImmediate(uncorkBatched, this);
  }
  return (Object.getPrototypeOf(this).write as (...a: unknown[]) => boolean).apply(this, args);
}

function uncorkBatched(s: Batched): void {
  s.csCorked = false;
  s.uncork();
}
