import type { Logger } from '../../lib/log.ts';

/**
 * Before a reading or an edge alarm is refused as `unknown-device`, `retired-device` or `wrong-gateway`,
 * the worker asks the database whether the registry moved since its last poll (another worker added,
 * un-retired or moved the device a moment ago): without it the message would be refused and acknowledged,
 * lost. A flood of truly unknown devices must not read the database per message: one version read at a
 * time, at most one per `minIntervalMs`, started after the message asked, shared by every message waiting.
 */

export const DEFAULT_RECHECK_MS = 250;

export interface RecheckDeps {
  /** Reads the database's version and reloads when it moved (the registry's `refresh`). */
  refresh(): Promise<unknown>;
  /** A monotonic clock for the interval (default performance.now: the cloud's `now` may stand still in tests). */
  clock?: () => number;
  logger: Logger;
  minIntervalMs?: number;
}

/** Returns `recheck()`: resolves after a version read that started after the call (never rejects). */
export function createRecheck(deps: RecheckDeps): () => Promise<void> {
  const gap = deps.minIntervalMs ?? DEFAULT_RECHECK_MS;
  const clock = deps.clock ?? (() => performance.now());
  let lastStart = -Infinity;
  let running: Promise<void> = Promise.resolve();
  // The read not yet started: every message asking now joins it.
  let pending: Promise<void> | undefined;

  return function recheck(): Promise<void> {
    if (pending) return pending;
    const wait = Math.min(gap, Math.max(0, lastStart + gap - clock()));
    const before = running;
    const p: Promise<void> = (async () => {
      if (wait > 0) await new Promise<void>((res) => setTimeout(res, wait).unref());
      await before;
      pending = undefined;
      lastStart = clock();
      await deps.refresh().catch((err: Error) => deps.logger.warn({ err: err.message }, 'registry version not read before refusing a message'));
    })();
    pending = p;
    running = p;
    return p;
  };
}
