import type { EngValue } from '../devices/codec.ts';
import type { Profile, Threshold } from '../devices/profile.ts';
import type { DeviceReading } from './poller.ts';

/**
 * Edge-local rules: the profile's `urgent` thresholds, evaluated at the edge on every poll so that an
 * alarm is published at once, not after the next report. A breach must hold for `debounceMs` before
 * it raises (docs/domain.md#sensors: ignore a tilt held less than about 2 s, passing vehicles); an
 * alarm raised is cleared once the condition no longer holds. Pure: the caller passes the clock.
 */
export interface EdgeAlarm {
  device: string;
  rule: string;
  hazard: string;
  severity: Threshold['severity'];
  point: string;
  value: EngValue;
  /** true when raised, false when cleared. */
  active: boolean;
  /** When the condition began to hold (raise) or stopped holding (clear). */
  since: string;
}

function holds(t: Threshold, v: EngValue | undefined): boolean {
  if (v === undefined) return false;
  if (t.op === '==') return v === t.value || (typeof t.value === 'boolean' && typeof v === 'number' && Boolean(v) === t.value);
  if (typeof v !== 'number' || typeof t.value !== 'number') return false;
  return t.op === '>' ? v > t.value : v < t.value;
}

export function createAlarmRules(debounceMs: number) {
  /** Per device and rule: when the condition began to hold, and whether the alarm is raised. */
  const state = new Map<string, { since?: number; raised: boolean }>();
  return {
    evaluate(profile: Profile, r: DeviceReading, now: number): EdgeAlarm[] {
      const out: EdgeAlarm[] = [];
      for (const t of profile.thresholds) {
        if (t.class !== 'urgent') continue;
        const key = `${r.device}/${t.id}`;
        const s = state.get(key) ?? { raised: false };
        const v = r.values[t.point];
        if (holds(t, v)) {
          s.since ??= now;
          if (!s.raised && now - s.since >= debounceMs) {
            s.raised = true;
            out.push({ device: r.device, rule: t.id, hazard: t.hazard, severity: t.severity, point: t.point, value: v!, active: true, since: new Date(s.since).toISOString() });
          }
        } else {
          if (s.raised && v !== undefined) {
            out.push({ device: r.device, rule: t.id, hazard: t.hazard, severity: t.severity, point: t.point, value: v, active: false, since: new Date(now).toISOString() });
            s.raised = false;
          }
          s.since = undefined;
        }
        state.set(key, s);
      }
      return out;
    },
  };
}
