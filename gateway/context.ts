/**
 * What the broker's handlers share: the options, the identity bound to each client, the
 * live set, the counters and the two ways of reporting (a denial, a dropped connection).
 * One context per gateway; the handlers (handlers/*.ts) and the listeners read it.
 */
import type { Socket } from 'node:net';
import type { Aedes, Client } from 'aedes';
import { silentLogger, type Logger } from '../lib/log.ts';
import { createRateLimiter } from '../lib/rate-limit.ts';
import type { CredentialStore, Identity } from './credentials.ts';
import { throttled } from './limits.ts';
import type { DenyKind, DropReason, GatewayMetrics } from './metrics.ts';
import { DEFAULT_MAX_PACKET_SIZE, type GatewayLimits, type GatewayOptions, type GatewayStats } from './types.ts';

export interface GatewayContext {
  readonly opts: GatewayOptions;
  readonly store: CredentialStore;
  readonly log: Logger;
  readonly metrics: GatewayMetrics | undefined;
  readonly now: () => number;
  readonly limits: GatewayLimits;
  readonly maxPacketSize: number;
  /** The running Aedes instance (between start and stop). */
  broker: Aedes | undefined;
  /** Sockets open on the listeners, authenticated or not. */
  readonly sockets: Set<Socket>;
  /** Authenticated clients still connected. */
  readonly live: Set<Client>;
  readonly identities: WeakMap<Client, Identity>;
  readonly remotes: WeakMap<Client, string>;
  /** Timers the handlers hold (publish pacing); cleared by stop(). */
  readonly timers: Set<NodeJS.Timeout>;
  readonly counters: Omit<GatewayStats, 'connections'>;
  /** Counts a refused publish, subscribe, Will or delivery. */
  deny(kind: DenyKind): void;
  /** Counts a connection closed by a limit or a fault; warns at most once a second per reason. */
  drop(reason: DropReason, details: Record<string, unknown>, message: string): void;
  /**
   * A warning about one source (a username, or an address before login): at most `warnLimit.max`
   * lines per source and window, then one line with the count suppressed (lib/rate-limit.ts).
   */
  warn(source: string, details: Record<string, unknown>, message: string): void;
  /** Reports what the warning limit still holds (stop()). */
  flushWarnings(): void;
}

/** Warning lines per source: `max` in each window of `windowMs`. */
export interface WarnLimit { windowMs: number; max: number }
export const DEFAULT_WARN_LIMIT: WarnLimit = { windowMs: 10_000, max: 5 };

export function createContext(opts: GatewayOptions): GatewayContext {
  const log = opts.logger ?? silentLogger();
  const now = opts.now ?? Date.now;
  const metrics = opts.metrics;
  const counters = { authFailures: 0, denied: 0, messages: 0, dropped: 0 };
  const warnOnce = new Map<string, (fn: () => void) => boolean>();
  const warnLimit = { ...DEFAULT_WARN_LIMIT, ...opts.warnLimit };
  const warnings = createRateLimiter({
    ...warnLimit,
    onSuppressed: (source, suppressed, windowMs) => log.warn({ source, suppressed, windowMs }, 'mqtt warnings suppressed for this source'),
  });

  return {
    opts,
    store: opts.credentials,
    log,
    metrics,
    now,
    limits: opts.limits ?? {},
    maxPacketSize: opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE,
    broker: undefined,
    sockets: new Set(),
    live: new Set(),
    identities: new WeakMap(),
    remotes: new WeakMap(),
    timers: new Set(),
    counters,
    deny(kind) {
      counters.denied++;
      metrics?.denied.inc({ kind });
    },
    drop(reason, details, message) {
      counters.dropped++;
      metrics?.drops.inc({ reason });
      // Under a flood, one line per second per reason; the counters keep the full count.
      let t = warnOnce.get(reason);
      if (!t) warnOnce.set(reason, (t = throttled(1000, now)));
      t(() => log.warn({ reason, ...details, dropped: counters.dropped }, message));
    },
    warn(source, details, message) {
      if (warnings.allow(source)) log.warn(details, message);
    },
    flushWarnings: () => warnings.close(),
  };
}
