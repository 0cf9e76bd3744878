/**
 * Password checks under a storm of bad logins (a scrypt run costs about 40 ms of a libuv
 * thread; 500 bad CONNECTs at once used to hold a good one back for 11 s):
 *
 * - a lane of at most `maxConcurrentChecks` checks at once; the rest wait in a queue of at
 *   most `maxQueuedChecks` (over it: refused at once, CONNACK 3);
 * - the queue serves *clean* attempts first: those whose username and address have no
 *   recent failure. A storm fails fast and marks its usernames and addresses, so a good
 *   credential from elsewhere waits for one running check at most, never for the storm;
 * - failures are counted per username *from one address* and per address; past `freeFailures`
 *   each further failure locks that key for `backoffMs`, doubling up to `maxBackoffMs`, and an
 *   attempt inside a lock is refused at once, without a check (also when it reaches the lane's
 *   head). A username is never locked for everyone: a storm against a gateway's id from other
 *   addresses cannot lock the real gateway out (its ids are public in the topics), unless
 *   `freeFailuresPerAccount` asks for that (people's accounts: the cloud's sign-in);
 * - the caller refuses unknown usernames without a check, after `typicalCheckMs()` so the
 *   answer takes about as long as a wrong password's (handlers/connect.ts).
 * Pure: time comes from `now`; the maps are bounded (oldest entries go first).
 */
import { availableParallelism } from 'node:os';

export interface LoginGuardOptions {
  /** Password checks running at once; default: one less than the cores or the libuv pool (which files and DNS share), at least 2. */
  maxConcurrentChecks?: number;
  /** Checks waiting for the lane; default 1,024. */
  maxQueuedChecks?: number;
  /** Failures of one username from one address before that pair is slowed down; default 5. */
  freeFailuresPerUsername?: number;
  /** Failures from one address before it is slowed down; default 20 (gateways behind one carrier NAT share one). */
  freeFailuresPerAddress?: number;
  /**
   * Failures of one username from any address before it is slowed down for everyone; default off
   * (the broker: gateway ids are public). People's accounts (the cloud's sign-in) turn it on.
   */
  freeFailuresPerAccount?: number;
  /** First lock after the free failures; default 1 s, doubling per failure. */
  backoffMs?: number;
  /** Longest lock; default 60 s. */
  maxBackoffMs?: number;
  /** Failures older than this are forgotten; default 15 min. */
  failureWindowMs?: number;
  /** Keys (usernames and addresses) remembered at most; default 10,000 each. */
  maxTrackedKeys?: number;
}

export type GuardRefusal =
  | { kind: 'throttled'; key: 'username' | 'address' | 'account'; retryInMs: number }
  | { kind: 'busy'; queued: number };

export class LoginRefused extends Error {
  constructor(readonly refusal: GuardRefusal) {
    super(refusal.kind === 'busy' ? `too many logins waiting (${refusal.queued})` : `too many failed logins for this ${refusal.key}: retry in ${refusal.retryInMs} ms`);
  }
}

export interface LoginGuard {
  /** The lock in force for this username or address, if any. */
  throttled(username: string | undefined, address: string): GuardRefusal | undefined;
  /** Runs `check` in the lane; rejects with LoginRefused when the queue is full or the attempt got locked while waiting. */
  check<T>(username: string, address: string, check: () => Promise<T>): Promise<T>;
  failed(username: string | undefined, address: string): void;
  succeeded(username: string, address: string): void;
  /** Recent duration of one check (moving average), for refusing unknown usernames as slowly. */
  typicalCheckMs(): number;
  stats(): { running: number; queued: number };
}

/** Defaults of the options above (maxConcurrentChecks: defaultConcurrency(), from the machine). */
export const DEFAULT_LOGIN_GUARD = {
  maxQueuedChecks: 1024,
  freeFailuresPerUsername: 5,
  freeFailuresPerAddress: 20,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  failureWindowMs: 15 * 60_000,
  maxTrackedKeys: 10_000,
} as const satisfies Required<Omit<LoginGuardOptions, 'maxConcurrentChecks' | 'freeFailuresPerAccount'>>;

function defaultConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(2, Math.min(availableParallelism(), pool) - 1);
}

interface Failures { count: number; last: number; lockedUntil: number }
interface Waiter { username: string; address: string; run: () => void; refuse: (r: GuardRefusal) => void }

export function loginGuard(opts: LoginGuardOptions & { now: () => number }): LoginGuard {
  const now = opts.now;
  const maxRunning = Math.max(1, opts.maxConcurrentChecks ?? defaultConcurrency());
  const d = DEFAULT_LOGIN_GUARD;
  const maxQueued = Math.max(0, opts.maxQueuedChecks ?? d.maxQueuedChecks);
  const free = {
    username: opts.freeFailuresPerUsername ?? d.freeFailuresPerUsername,
    address: opts.freeFailuresPerAddress ?? d.freeFailuresPerAddress,
    account: opts.freeFailuresPerAccount,
  };
  const backoffMs = opts.backoffMs ?? d.backoffMs;
  const maxBackoffMs = opts.maxBackoffMs ?? d.maxBackoffMs;
  const windowMs = opts.failureWindowMs ?? d.failureWindowMs;
  const maxKeys = opts.maxTrackedKeys ?? d.maxTrackedKeys;
  const byUsername = new Map<string, Failures>();
  const byAddress = new Map<string, Failures>();
  const byAccount = new Map<string, Failures>();
  const queue: Waiter[] = [];
  let running = 0;
  let typical = 50;

  function current(map: Map<string, Failures>, key: string | undefined): Failures | undefined {
    if (key === undefined) return undefined;
    const f = map.get(key);
    if (f && now() - f.last > windowMs) {
      map.delete(key);
      return undefined;
    }
    return f;
  }

  function lockOf(map: Map<string, Failures>, key: string | undefined): number {
    const f = current(map, key);
    return f ? f.lockedUntil - now() : 0;
  }

  /** The username key is the pair (username, address). */
  const pair = (username: string | undefined, address: string): string | undefined => (username === undefined ? undefined : `${username}\u0000${address}`);

  function throttled(username: string | undefined, address: string): GuardRefusal | undefined {
    const u = lockOf(byUsername, pair(username, address));
    if (u > 0) return { kind: 'throttled', key: 'username', retryInMs: Math.ceil(u) };
    const a = lockOf(byAddress, address);
    if (a > 0) return { kind: 'throttled', key: 'address', retryInMs: Math.ceil(a) };
    const c = free.account === undefined ? 0 : lockOf(byAccount, username);
    if (c > 0) return { kind: 'throttled', key: 'account', retryInMs: Math.ceil(c) };
    return undefined;
  }

  function clean(w: Waiter): boolean {
    return !current(byUsername, pair(w.username, w.address)) && !current(byAddress, w.address);
  }

  function record(map: Map<string, Failures>, key: string, freeCount: number): void {
    const t = now();
    const f = current(map, key) ?? { count: 0, last: t, lockedUntil: 0 };
    f.count++;
    f.last = t;
    if (f.count > freeCount) f.lockedUntil = t + Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(30, f.count - freeCount - 1));
    map.delete(key); // re-inserted last: the map's order is oldest failure first
    map.set(key, f);
    if (map.size > maxKeys) map.delete(map.keys().next().value!);
  }

  function pump(): void {
    while (running < maxRunning && queue.length > 0) {
      let i = queue.findIndex(clean);
      if (i < 0) i = 0;
      const w = queue.splice(i, 1)[0];
      const lock = throttled(w.username, w.address);
      if (lock) {
        w.refuse(lock);
        continue;
      }
      running++;
      w.run();
    }
  }

  return {
    throttled,
    check(username, address, fn) {
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          username,
          address,
          refuse: (r) => reject(new LoginRefused(r)),
          run: () => {
            const started = now();
            fn().then(resolve, reject).finally(() => {
              typical = typical * 0.8 + Math.max(1, now() - started) * 0.2;
              running--;
              pump();
            });
          },
        };
        if (queue.length >= maxQueued && running >= maxRunning) {
          // Full: a clean attempt takes the place of the newest suspect one; otherwise it is refused.
          let victim = -1;
          if (clean(waiter)) for (let j = queue.length - 1; j >= 0 && victim < 0; j--) if (!clean(queue[j])) victim = j;
          if (victim < 0) return waiter.refuse({ kind: 'busy', queued: queue.length });
          queue.splice(victim, 1)[0].refuse({ kind: 'busy', queued: queue.length });
        }
        queue.push(waiter);
        pump();
      });
    },
    failed(username, address) {
      const key = pair(username, address);
      if (key !== undefined) record(byUsername, key, free.username);
      if (username !== undefined && free.account !== undefined) record(byAccount, username, free.account);
      record(byAddress, address, free.address);
    },
    succeeded(username, address) {
      byUsername.delete(pair(username, address)!);
    },
    typicalCheckMs: () => Math.round(typical),
    stats: () => ({ running, queued: queue.length }),
  };
}
