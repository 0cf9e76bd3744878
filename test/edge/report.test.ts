import { describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { createAlarmRules } from '../../edge/alarms.ts';
import { defaultRuleSet } from '../../devices/rules.ts';
import { createReporter, type ReportPolicy } from '../../edge/report.ts';
import type { DeviceReading } from '../../edge/poller.ts';

const profiles = loadProfiles();
const reading = (values: DeviceReading['values'], extra: Partial<DeviceReading> = {}): DeviceReading => ({ device: 'D-1', values, quality: 'good', ...extra });
const exception: ReportPolicy = { mode: 'exception', heartbeatMs: 10_000, deadbands: { level_m: 0.01 }, defaultDeadband: 0 };

describe('report by exception', () => {
  it('reports the first reading, then only moves beyond the deadband, flag changes and the heartbeat', () => {
    const r = createReporter();
    expect(r.decide(reading({ level_m: 0.5, battery_pct: 90 }), exception, 0)).toBe(true);
    expect(r.decide(reading({ level_m: 0.505, battery_pct: 90 }), exception, 1000)).toBe(false);
    // Measured against the last reported value, so a slow creep is reported once it adds up.
    expect(r.decide(reading({ level_m: 0.509, battery_pct: 90 }), exception, 2000)).toBe(false);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 90 }), exception, 3000)).toBe(true);
    // No deadband configured for battery_pct: any change counts.
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }), exception, 4000)).toBe(true);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }), exception, 5000)).toBe(false);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }, { quality: 'uncertain' }), exception, 5500)).toBe(true);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }, { quality: 'uncertain', forced: true }), exception, 6000)).toBe(true);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }, { quality: 'uncertain' }), exception, 15_999)).toBe(false);
    expect(r.decide(reading({ level_m: 0.51, battery_pct: 89 }, { quality: 'uncertain' }), exception, 16_000)).toBe(true);
  });

  it('reports every reading in poll mode', () => {
    const r = createReporter();
    const poll = { ...exception, mode: 'poll' as const };
    expect([0, 1, 2].map((t) => r.decide(reading({ level_m: 0.5 }), poll, t))).toEqual([true, true, true]);
  });
});

describe('edge-local alarms', () => {
  const defaults = defaultRuleSet(profiles);
  const alarmRules = (debounceMs: number) => {
    const r = createAlarmRules({ rules: defaults, debounceMs });
    return { evaluate: (reading: DeviceReading, now: number) => r.evaluate(reading.device, 'manhole-cover', reading.values, now, false) };
  };

  it('raises a cover tilt only when it is held past the debounce, so a passing vehicle raises nothing', () => {
    const rules = alarmRules(2000);
    // A wheel tips the cover for a second.
    expect(rules.evaluate(reading({ tilt_deg: 25 }), 0)).toEqual([]);
    expect(rules.evaluate(reading({ tilt_deg: 25 }), 1000)).toEqual([]);
    expect(rules.evaluate(reading({ tilt_deg: 0.5 }), 1500)).toEqual([]);
    // Displaced and staying so.
    expect(rules.evaluate(reading({ tilt_deg: 30 }), 10_000)).toEqual([]);
    expect(rules.evaluate(reading({ tilt_deg: 30 }), 11_000)).toEqual([]);
    const raised = rules.evaluate(reading({ tilt_deg: 31 }), 12_000);
    expect(raised).toEqual([expect.objectContaining({ rule: 'cover-tilted', hazard: 'cover-open', active: true, value: 31, since: new Date(10_000).toISOString() })]);
    // Raised once, not on every poll; cleared when the cover is back.
    expect(rules.evaluate(reading({ tilt_deg: 31 }), 13_000)).toEqual([]);
    expect(rules.evaluate(reading({ tilt_deg: 0.4 }), 14_000)).toEqual([expect.objectContaining({ rule: 'cover-tilted', active: false })]);
  });

  it('leaves routine and device-health thresholds to the cloud', () => {
    const rules = alarmRules(0);
    expect(rules.evaluate(reading({ battery_pct: 5 }), 0)).toEqual([]);
    expect(rules.evaluate(reading({ cover_open: true }), 0)).toEqual([expect.objectContaining({ rule: 'cover-open', severity: 'critical' })]);
  });
});
