import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { CsError, LibErrors } from './errors.ts';
import type { Logger } from './log.ts';

/**
 * What the cloud's HTTP server holds and for how long (README "Limits and error bodies"; the cloud's API and the broker's admin API): a connection that sends
 * nothing, half a request or nothing more after a response is closed in seconds, and no address
 * (nor everyone together) holds more connections than the process has file descriptors to give.
 */
export interface HttpLimits {
  /** Time to receive a request's headers, counted from the connection or the previous request (Node `headersTimeout`). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (Node `requestTimeout`); more than `headersTimeoutMs`. */
  requestTimeoutMs: number;
  /** Time an idle keep-alive connection waits for its next request (Node `keepAliveTimeout`). */
  keepAliveTimeoutMs: number;
  /** Inactivity (nothing read or written) after which a socket is closed (Fastify `connectionTimeout`); above the event stream's 15 s heartbeat. */
  idleTimeoutMs: number;
  /** Connections in all; at the cap a new one evicts the oldest connection without a request in flight, or is closed. */
  maxConnections: number;
  /** Connections from one remote address; the excess is closed at once. 0 turns the cap off (behind a proxy). */
  maxConnectionsPerAddress: number;
  /** Live event streams (`GET /api/events`) per token; one more answers 429 CS_CLOUD_TOO_MANY_STREAMS. */
  maxEventStreamsPerToken: number;
  /** Requests per second per credential (token or session), refilling a bucket of `requestBurst`; 0 turns the limit off. Over it: 429 CS_CLOUD_RATE_LIMITED. */
  requestsPerSecond: number;
  /** Requests a credential may make at once before the rate applies. */
  requestBurst: number;
}

/** The process's soft limit on open files (Linux /proc/self/limits); undefined where unknown. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors kept for everything but HTTP clients: the database, MQTT, Redis, logs, in-process edges. */
const RESERVED_FDS = 256;

export function defaultHttpLimits(fdLimit = openFileLimit()): HttpLimits {
  return {
    headersTimeoutMs: 5_000,
    // A crew's 10 MB photo over a 1 Mbit/s mobile link takes about 80 s (README "Cases": photos); a stalled
    // body is still cut by idleTimeoutMs, and a slow-header client by headersTimeoutMs.
    requestTimeoutMs: 120_000,
    keepAliveTimeoutMs: 5_000,
    idleTimeoutMs: 30_000,
    maxConnections: fdLimit === undefined ? 4_096 : Math.max(64, Math.min(10_000, fdLimit - RESERVED_FDS)),
    maxConnectionsPerAddress: 128,
    maxEventStreamsPerToken: 4,
    requestsPerSecond: 50,
    requestBurst: 300,
  };
}

/**
 * Refuses limits Node would refuse later, or that would cut the event stream's heartbeat
 * (`eventStreams: false` for a server without one, such as the broker's admin endpoint).
 */
export function checkHttpLimits<L extends Partial<HttpLimits>>(l: L, opts: { eventStreams?: boolean } = {}): L {
  const problems: string[] = [];
  for (const [k, v] of Object.entries(l)) if (!Number.isSafeInteger(v) || v < 0) problems.push(`${k} must be a whole number >= 0 (got ${v})`);
  if (l.headersTimeoutMs !== undefined && l.requestTimeoutMs !== undefined && l.headersTimeoutMs > l.requestTimeoutMs) problems.push(`headersTimeoutMs (${l.headersTimeoutMs}) must not exceed requestTimeoutMs (${l.requestTimeoutMs})`);
  if (opts.eventStreams !== false && l.idleTimeoutMs !== undefined && l.idleTimeoutMs > 0 && l.idleTimeoutMs <= 15_000) problems.push(`idleTimeoutMs (${l.idleTimeoutMs}) must exceed the event stream's 15 s heartbeat`);
  if (problems.length) throw new CsError(LibErrors.CONFIG_INVALID, `http limits invalid: ${problems.join('; ')}`);
  return l;
}

/** Fastify's server options for these limits (timeouts checked every second, not Node's default 30 s). */
export function serverOptions(l: HttpLimits) {
  return {
    connectionTimeout: l.idleTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    http: { headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs, connectionsCheckingInterval: 1_000 },
  };
}

export interface ConnectionStats {
  open: number;
  refusedPerAddress: number;
  evicted: number;
  refusedFull: number;
}

/**
 * Caps connections per remote address and in all, counted on 'connection'. At the total cap the
 * oldest connection with no request in flight (idle, or still sending its headers) is closed to
 * make room, so clients that send requests keep being served while idle sockets pile up.
 */
export function guardConnections(server: Server, l: HttpLimits, log: Logger, now: () => number = Date.now): () => ConnectionStats {
  const open = new Set<Socket>(); // insertion order: oldest first
  const byAddress = new Map<string, number>();
  const inFlight = new Map<Socket, number>();
  const stats = { refusedPerAddress: 0, evicted: 0, refusedFull: 0 };
  let logged = { at: 0, refusedPerAddress: 0, evicted: 0, refusedFull: 0 };

  const release = (s: Socket, addr: string) => {
    if (!open.delete(s)) return;
    inFlight.delete(s);
    const n = (byAddress.get(addr) ?? 1) - 1;
    if (n > 0) byAddress.set(addr, n);
    else byAddress.delete(addr);
  };
  // One warning per 10 s at most, with the counts since the last one (a flood writes one line, not one per socket).
  const report = () => {
    const t = now();
    if (t - logged.at < 10_000) return;
    const since = {
      refusedPerAddress: stats.refusedPerAddress - logged.refusedPerAddress,
      evicted: stats.evicted - logged.evicted,
      refusedFull: stats.refusedFull - logged.refusedFull,
    };
    logged = { at: t, ...stats };
    log.warn({ ...since, open: open.size, addresses: byAddress.size }, 'connections shed');
  };
  const addrOf = new WeakMap<Socket, string>();

  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? 'unknown';
    const n = byAddress.get(addr) ?? 0;
    if (l.maxConnectionsPerAddress > 0 && n >= l.maxConnectionsPerAddress) {
      stats.refusedPerAddress++;
      socket.destroy();
      return report();
    }
    if (l.maxConnections > 0 && open.size >= l.maxConnections) {
      let victim: Socket | undefined;
      for (const s of open) {
        if (!inFlight.get(s)) { victim = s; break; }
      }
      if (!victim) {
        stats.refusedFull++;
        socket.destroy();
        return report();
      }
      stats.evicted++;
      release(victim, addrOf.get(victim)!);
      victim.destroy();
      report();
    }
    addrOf.set(socket, addr);
    open.add(socket);
    byAddress.set(addr, (byAddress.get(addr) ?? 0) + 1);
    socket.once('close', () => release(socket, addr));
  });

  server.on('request', (req, res) => {
    const s = req.socket;
    if (!open.has(s)) return;
    inFlight.set(s, (inFlight.get(s) ?? 0) + 1);
    res.once('close', () => {
      const k = (inFlight.get(s) ?? 1) - 1;
      if (k > 0) inFlight.set(s, k);
      else inFlight.delete(s);
    });
  });

  return () => ({ open: open.size, ...stats });
}

/** Live event streams per token: `acquire` gives a release function, or undefined at the cap. */
export function createStreamLimiter(max: number) {
  const counts = new Map<string, number>();
  return {
    acquire(key: string): (() => void) | undefined {
      const n = counts.get(key) ?? 0;
      if (max > 0 && n >= max) return undefined;
      counts.set(key, n + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const k = (counts.get(key) ?? 1) - 1;
        if (k > 0) counts.set(key, k);
        else counts.delete(key);
      };
    },
    count: (key: string) => counts.get(key) ?? 0,
  };
}
export type StreamLimiter = ReturnType<typeof createStreamLimiter>;
