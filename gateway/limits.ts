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

/** Calls `fn` at most once per `everyMs` (log lines under a flood); returns whether it ran. */
export function throttled(everyMs: number, now: () => number): (fn: () => void) => boolean {
  let last = -Infinity;
  return (fn) => {
    const t = now();
    if (t - last < everyMs) return false;
    last = t;
    fn();
    return true;
  };
}
