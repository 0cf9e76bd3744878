import { payloadHash } from './intake.ts';
import { READING_MAX_AGE_MS } from '../lib/retention.ts';
import type { Profile } from '../devices/profile.ts';
import type { Reading } from '../lib/messages.ts';

/**
 * What a schema-valid reading must also be before it is stored (issue #10, README "Readings"):
 * a plausible instant, and values that are points of its device's profile with the point's type.
 */

export interface ReadingLimits {
  /** How far ahead of the cloud's clock a reading's `ts` may be (edge clock skew); default 5 min. */
  maxSkewMs: number;
  /**
   * How far behind it may be; default READING_MAX_AGE_MS (lib/retention.ts: the edge outbox's
   * retention plus a day), so that no reading an edge still holds is refused.
   */
  maxAgeMs: number;
}

export const DEFAULT_READING_LIMITS: ReadingLimits = { maxSkewMs: 5 * 60_000, maxAgeMs: READING_MAX_AGE_MS };

export type ReadingProblem =
  | { reason: 'ts-future' | 'ts-too-old' | 'unknown-point' | 'point-type'; message: string };

/** `ts` (epoch ms) against the cloud's clock: undefined when plausible. */
export function checkTime(ts: number, iso: string, now: number, limits: ReadingLimits): ReadingProblem | undefined {
  if (ts > now + limits.maxSkewMs) {
    return { reason: 'ts-future', message: `ts ${iso} is ${Math.round((ts - now) / 1000)} s ahead of the cloud's clock (at most ${limits.maxSkewMs / 1000} s allowed)` };
  }
  if (ts < now - limits.maxAgeMs) {
    return { reason: 'ts-too-old', message: `ts ${iso} is older than the ${Math.round(limits.maxAgeMs / 86_400_000 * 10) / 10} days readings are accepted for` };
  }
  return undefined;
}

/** The JSON type a point of this data type travels as. */
function expectedType(type: Profile['points'][number]['type']): 'number' | 'boolean' | 'string' {
  return type === 'bits' ? 'boolean' : type === 'string' ? 'string' : 'number';
}

/** Every value a point of the profile, of the point's type; undefined when so. */
export function checkValues(values: Reading['values'], profile: Profile): ReadingProblem | undefined {
  const unknown: string[] = [];
  const wrong: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const point = profile.points.find((p) => p.key === key);
    if (!point) {
      unknown.push(key);
      continue;
    }
    const want = expectedType(point.type);
    if (typeof value !== want) wrong.push(`${key} must be a ${want} (${point.type}), got ${JSON.stringify(value).slice(0, 40)}`);
  }
  if (unknown.length) {
    return { reason: 'unknown-point', message: `unknown point${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} for profile ${profile.id} (points: ${profile.points.map((p) => p.key).join(', ')})` };
  }
  if (wrong.length) return { reason: 'point-type', message: wrong.join('; ') };
  return undefined;
}

/**
 * The hash of what a reading measured: device, instant, values and quality. `historical` is left
 * out on purpose: the edge replays an unacknowledged reading with `historical: true` (README
 * "The outbox and `historical`"), and that is the same reading, not a conflict.
 */
export function readingHash(r: { device: string; ts: number; values: unknown; quality: string }): string {
  return payloadHash({ device: r.device, ts: r.ts, values: r.values, quality: r.quality });
}
