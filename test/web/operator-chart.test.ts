import { describe, expect, it } from 'vitest';
import { spliceBuckets, thresholdLines, valueAxis, zoomWindow, type Bucket, type Thresholds } from '../../cloud/web/app/src/components/operator-chart.ts';

/** The operator's history chart arithmetic (cloud/web/app/src/components/operator-chart.ts). */

const rule = (id: string, point: string, value: number | boolean, severity: 'minor' | 'major' | 'critical' = 'major') =>
  ({ id, hazard: 'waterlogging', point, op: '>', value, severity });
const th = (inForce: 'normal' | 'emergency'): Thresholds => ({
  inForce,
  normal: [rule('wl-major', 'level_m', 0.85), rule('wl-critical', 'level_m', 0.95, 'critical'), rule('open', 'cover_open', true), rule('bat', 'battery_pct', 20, 'minor')],
  emergency: [rule('wl-major', 'level_m', 0.75), rule('wl-critical', 'level_m', 0.95, 'critical'), rule('open', 'cover_open', true), rule('bat', 'battery_pct', 20, 'minor')],
});
const label = (l: { value: number | boolean }, v: string) => `${v} ${l.value}`;

describe('the threshold lines of a point', () => {
  it('draws a rule at both limits when they differ, marking the one the city\'s mode puts in force', () => {
    expect(thresholdLines(th('normal'), 'level_m', label)).toEqual([
      { value: 0.85, severity: 'major', inForce: true, label: 'normal 0.85' },
      { value: 0.75, severity: 'major', inForce: false, label: 'emergency 0.75' },
      { value: 0.95, severity: 'critical', inForce: true, label: 'both 0.95' },
    ]);
    expect(thresholdLines(th('emergency'), 'level_m', label).filter((l) => l.inForce).map((l) => l.value)).toEqual([0.75, 0.95]);
  });

  it('draws a rule with one limit for both modes once, and no line for flags or other points', () => {
    expect(thresholdLines(th('normal'), 'battery_pct', label)).toEqual([{ value: 20, severity: 'minor', inForce: true, label: 'both 20' }]);
    expect(thresholdLines(th('normal'), 'cover_open', label)).toEqual([]);
    expect(thresholdLines(null, 'level_m', label)).toEqual([]);
  });
});

const b = (t: number, mean: number): Bucket => ({ t, min: mean, max: mean, mean, count: 1 });

describe('a zoomed history', () => {
  it('shows the fine buckets inside the window and the coarse ones around it, in time order', () => {
    const coarse = [b(0, 1), b(100, 2), b(200, 3), b(300, 4)];
    const fine = [b(100, 20), b(150, 25), b(190, 29), b(250, 99)];
    expect(spliceBuckets(coarse, fine, [100, 200]).map((x) => [x.t, x.mean])).toEqual([[0, 1], [100, 20], [150, 25], [190, 29], [200, 3], [300, 4]]);
    expect(spliceBuckets(coarse, null, null)).toBe(coarse);
  });

  it('turns the zoom percentages into a time window, and the whole range into none', () => {
    expect(zoomWindow(1000, 2000, 25, 50)).toEqual([1250, 1500]);
    expect(zoomWindow(1000, 2000, 0, 100)).toBeNull();
  });
});

describe('the value axis', () => {
  it('holds every value and line with a margin, on even steps', () => {
    expect(valueAxis([0.2, 0.9, 0.95, 0.75])).toEqual({ min: 0.15, max: 1 });
    expect(valueAxis([5, 5])).toEqual({ min: 4.5, max: 5.5 });
    expect(valueAxis([])).toEqual({ min: 0, max: 1 });
  });
});
