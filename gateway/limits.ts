/** Token buckets are shared with the cloud's per-credential API limit (lib/rate-limit.ts). */
export { tokenBucket, type TokenBucket, type BucketOptions } from '../lib/rate-limit.ts';

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
