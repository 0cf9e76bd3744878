import type { EdgeAlarm } from '../lib/messages.ts';
import { breaches, clears, implausiblePoints, limitOf, rulesFor, type PointValue, type RuleSet, type ThresholdRule } from '../devices/rules.ts';

/**
 * Edge-local alarms: the `urgent` threshold rules of the shared rule set (devices/rules.ts, the same
 * rules and overrides the cloud judges by), evaluated at the edge on every poll so that an alarm is
 * published at once, not after the next report. A breach must hold for the rule's `holdMs` (else
 * `debounceMs`) before it raises (docs/domain.md#sensors: ignore a tilt held less than about 2 s,
 * passing vehicles); a raised alarm clears once the value is back past the limit by the rule's
 * hysteresis. In fast (emergency) mode the rule's `emergencyValue` is the limit, as in the cloud in
 * emergency mode. A value a range rule calls implausible is not judged. Pure: the caller passes the clock.
 */

/** An alarm as the edge decides it; the edge adds `seq`, `ts` and `historical` when it publishes. */
export type LocalAlarm = Omit<EdgeAlarm, 'seq' | 'ts' | 'historical'>;

export interface AlarmRulesOptions {
  rules: RuleSet;
  /** Hold time of a rule that names none. */
  debounceMs: number;
}

export interface AlarmRules {
  evaluate(device: string, kind: string, values: Record<string, PointValue>, now: number, emergency: boolean): LocalAlarm[];
}

export function createAlarmRules(opts: AlarmRulesOptions): AlarmRules {
  /** Per device and rule: when the condition began to hold, and whether the alarm is raised. */
  const state = new Map<string, { since?: number; raised: boolean }>();
  const rulesOf = new Map<string, ReturnType<typeof rulesFor>>();

  function alarm(device: string, r: ThresholdRule, value: PointValue, limit: number | boolean, active: boolean, since: number): LocalAlarm {
    return { device, rule: r.id, hazard: r.hazard, severity: r.severity, point: r.point, value, limit, active, since: new Date(since).toISOString() };
  }

  return {
    evaluate(device, kind, values, now, emergency) {
      let rules = rulesOf.get(device);
      if (!rules) rulesOf.set(device, (rules = rulesFor(opts.rules, kind, device)));
      const bad = implausiblePoints(rules, values);
      const out: LocalAlarm[] = [];
      for (const r of rules) {
        if (r.kind !== 'threshold' || r.class !== 'urgent') continue;
        const v = values[r.point];
        if (v === undefined || bad.has(r.point)) continue;
        const key = `${device}/${r.id}`;
        const s = state.get(key) ?? { raised: false };
        const limit = limitOf(r, emergency);
        if (breaches({ op: r.op, value: limit }, v)) {
          s.since ??= now;
          if (!s.raised && now - s.since >= (r.holdMs ?? opts.debounceMs)) {
            s.raised = true;
            out.push(alarm(device, r, v, limit, true, s.since));
          }
        } else {
          s.since = undefined;
          if (s.raised && clears(r, limit, v)) {
            s.raised = false;
            out.push(alarm(device, r, v, limit, false, now));
          }
        }
        state.set(key, s);
      }
      return out;
    },
  };
}
