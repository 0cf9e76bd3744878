/**
 * A per-source limit on repeated log lines (issue #10: one gateway's 10,000 bad messages wrote
 * 10,018 warning lines). Each source (a gateway id, an address) gets a window of `windowMs` that
 * starts with its first event: the first `max` events in it pass, the rest are counted, and when
 * the window ends the count is handed to `onSuppressed` (which logs one summary line). Windows live
 * only while events arrive, so the state is bounded by the sources active in one window.
 */
export interface RateLimiterOptions {
  /** Length of a source's window (ms). */
  windowMs: number;
  /** Events that pass per source and window. */
  max: number;
  /** Called once per window that suppressed anything, when it ends (or on flush/close). */
  onSuppressed(source: string, suppressed: number, windowMs: number): void;
}

export interface RateLimiter {
  /** True when this event of `source` may be logged; false when it is counted as suppressed. */
  allow(source: string): boolean;
  /** Suppressed events not yet reported, per source. */
  pending(): Record<string, number>;
  /** Ends every window now, reporting what each suppressed; timers are cleared. */
  close(): void;
}

interface Window { passed: number; suppressed: number; timer: ReturnType<typeof setTimeout> }

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  if (!(opts.windowMs > 0) || !Number.isInteger(opts.max) || opts.max < 0) {
    throw new RangeError(`rate limiter needs windowMs > 0 and an integer max >= 0 (got ${opts.windowMs}, ${opts.max})`);
  }
  const windows = new Map<string, Window>();

  function end(source: string): void {
    const w = windows.get(source);
    if (!w) return;
    clearTimeout(w.timer);
    windows.delete(source);
    if (w.suppressed > 0) opts.onSuppressed(source, w.suppressed, opts.windowMs);
  }

  return {
    allow(source) {
      let w = windows.get(source);
      if (!w) {
        const timer = setTimeout(() => end(source), opts.windowMs);
        // A pending summary never keeps a process alive.
        (timer as { unref?: () => void }).unref?.();
        w = { passed: 0, suppressed: 0, timer };
        windows.set(source, w);
      }
      if (w.passed < opts.max) {
        w.passed += 1;
        return true;
      }
      w.suppressed += 1;
      return false;
    },
    pending: () => Object.fromEntries([...windows].filter(([, w]) => w.suppressed > 0).map(([s, w]) => [s, w.suppressed])),
    close() {
      for (const source of [...windows.keys()]) end(source);
    },
  };
}

/**
 * Rate limits as token buckets, pure and driven by an injected clock (`now`, in ms).
 *
 * A bucket holds up to `burst` tokens and refills at `ratePerSecond`. `take()` either
 * spends a token now or reports how long the caller must wait; the gateway uses the
 * first form to refuse connections over the listener's rate, and the second to hold
 * back (not refuse) a client publishing faster than its rate: Aedes reads a client's
 * next packets only after the current ones are authorized, so the delay becomes TCP
 * back-pressure on that client alone.
 */
export interface TokenBucket {
  /** Spends one token when one is available now; false otherwise (nothing spent). */
  tryTake(): boolean;
  /**
   * Spends one token, going into debt when none is left; returns the ms to wait until
   * the token is really there (0 when it is available now).
   */
  take(): number;
}

export interface BucketOptions {
  ratePerSecond: number;
  /** Largest number of tokens held; defaults to one second's worth (at least 1). */
  burst?: number;
  now: () => number;
}

export function tokenBucket(opts: BucketOptions): TokenBucket {
  const rate = opts.ratePerSecond;
  if (!(rate > 0)) throw new RangeError(`ratePerSecond must be positive, got ${rate}`);
  const burst = Math.max(1, opts.burst ?? rate);
  let tokens = burst;
  let last = opts.now();

  function refill(): void {
    const t = opts.now();
    if (t > last) {
      tokens = Math.min(burst, tokens + ((t - last) * rate) / 1000);
      last = t;
    }
  }

  return {
    tryTake() {
      refill();
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
    take() {
      refill();
      tokens -= 1;
      return tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / rate);
    },
  };
}
