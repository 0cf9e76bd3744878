import type { CaseDetail, CaseJson } from './crew.ts';

/**
 * What the verifier's pages read of the case API (cloud/http/schemas.ts Verification): the sensor
 * check the verify action enforces (docs/domain.md#the-case), and the queue's order.
 */

export interface Verification { inRange: boolean; backSince: string | null; windowMs: number; ready: boolean }
export interface HandledCase extends CaseJson { handledAt?: string | null; verification?: Verification }
export interface HandledDetail extends CaseDetail { handledAt?: string | null; verification?: Verification }

export type Readiness =
  | { kind: 'ready' }
  /** Back in range, the window not yet over: ready in `msLeft`. */
  | { kind: 'waiting'; msLeft: number; readyAt: number }
  /** Still out of range (an alarm of the case's hazards is active at the asset). */
  | { kind: 'out' }
  /** Not a handled case: nothing to verify. */
  | { kind: 'none' };

export function readiness(v: Verification | undefined, now: number): Readiness {
  if (!v) return { kind: 'none' };
  if (v.ready) return { kind: 'ready' };
  if (!v.inRange) return { kind: 'out' };
  const readyAt = (v.backSince ? Date.parse(v.backSince) : now) + v.windowMs;
  return { kind: 'waiting', msLeft: Math.max(0, readyAt - now), readyAt };
}

/** When the crew reported it handled (older servers: the last update). */
export function handledAtOf(c: HandledCase): string {
  return c.handledAt ?? c.updatedAt;
}

/** The queue: oldest handled first, so nothing waits longest unseen. */
export function byHandledAt(a: HandledCase, b: HandledCase): number {
  return Date.parse(handledAtOf(a)) - Date.parse(handledAtOf(b)) || a.id.localeCompare(b.id);
}
