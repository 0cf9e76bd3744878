import { describe, expect, it } from 'vitest';
import { loadProfiles, type Threshold } from '../../devices/profile.ts';
import { breaches, evaluate } from '../../cloud/rules.ts';
import { categoryFor, deadlineFor, DEFAULT_CATEGORIES, responsibleUnit } from '../../cloud/categories.ts';
import { caseId } from '../../cloud/cases.ts';

const profiles = loadProfiles();
const manhole = profiles.get('manhole-cover')!.thresholds;
const level = profiles.get('water-level')!.thresholds;
const pipeline = profiles.get('pipeline')!.thresholds;
const HOUR = 3_600_000;

describe('rules', () => {
  it.each([
    { op: '>', limit: 10, value: 10.1, hit: true },
    { op: '>', limit: 10, value: 10, hit: false },
    { op: '<', limit: 20, value: 19, hit: true },
    { op: '<', limit: 20, value: 20, hit: false },
    { op: '==', limit: true, value: true, hit: true },
    { op: '==', limit: true, value: false, hit: false },
    { op: '==', limit: true, value: 1, hit: true },
    { op: '>', limit: 10, value: '11', hit: false },
    { op: '>', limit: 10, value: true, hit: false },
  ] as const)('$value $op $limit breaches: $hit', ({ op, limit, value, hit }) => {
    expect(breaches({ op, value: limit } as Pick<Threshold, 'op' | 'value'>, value)).toBe(hit);
  });

  it('a missing point breaches nothing', () => {
    expect(evaluate({ battery_pct: 80 }, manhole)).toEqual([]);
  });

  it.each([
    { values: { level_m: 0.5 }, expected: [] },
    { values: { level_m: 0.75 }, expected: [{ hazard: 'waterlogging', severity: 'minor', class: 'routine', thresholdId: 'level-tier1' }] },
    { values: { level_m: 0.9 }, expected: [{ hazard: 'waterlogging', severity: 'major', class: 'urgent', thresholdId: 'level-tier2' }] },
    { values: { level_m: 0.99 }, expected: [{ hazard: 'waterlogging', severity: 'critical', class: 'urgent', thresholdId: 'level-tier3' }] },
    { values: { level_m: 0.99, battery_pct: 5 }, expected: [
      { hazard: 'waterlogging', severity: 'critical', class: 'urgent', thresholdId: 'level-tier3' },
      { hazard: 'low-battery', severity: 'minor', class: 'device-health', thresholdId: 'battery-low' },
    ] },
  ])('water level $values gives the highest severity per hazard', ({ values, expected }) => {
    expect(evaluate(values as Record<string, number>, level)).toMatchObject(expected);
  });

  it('a tilted and open cover is one cover-open breach, the critical one', () => {
    const b = evaluate({ tilt_deg: 45, cover_open: true, gas_ch4_ppm: 6000, gas_h2s_ppm: 20 }, manhole);
    expect(b.map((x) => [x.hazard, x.severity, x.thresholdId])).toEqual([
      ['cover-open', 'critical', 'cover-open'],
      ['gas', 'critical', 'gas-ch4'],
    ]);
    expect(b[0]).toMatchObject({ point: 'cover_open', value: true, limit: true });
  });

  it('pipeline pressure below band is urgent, above band routine', () => {
    expect(evaluate({ pressure_mpa: 0.1 }, pipeline)).toMatchObject([{ hazard: 'pressure-low', class: 'urgent', value: 0.1, limit: 0.15 }]);
    expect(evaluate({ pressure_mpa: 0.7 }, pipeline)).toMatchObject([{ hazard: 'pressure-high', class: 'routine' }]);
  });
});

describe('categories', () => {
  const t0 = Date.parse('2026-09-14T06:00:00Z');
  it.each([
    ['cover-open', 'urgent', 6],
    ['water-in-well', 'urgent', 6],
    ['gas', 'urgent', 2],
    ['waterlogging', 'urgent', 6],
    ['waterlogging', 'routine', 24],
    ['pressure-low', 'urgent', 8],
    ['pressure-high', 'routine', 24],
    ['low-battery', 'device-health', 48],
    ['unheard-of', 'routine', 24],
  ] as const)('%s (%s) is due %i h after registration', (hazard, cls, hours) => {
    expect(deadlineFor(categoryFor(DEFAULT_CATEGORIES, hazard, cls), cls, t0)).toBe(t0 + hours * HOUR);
  });

  it('an urgent case is capped at 12 h after registration, a routine one is not', () => {
    const slow = { title: 'slow', class: 'urgent' as const, limitHours: 30, unit: 'owner' as const };
    expect(deadlineFor(slow, 'urgent', t0)).toBe(t0 + 12 * HOUR);
    expect(deadlineFor(slow, 'routine', t0)).toBe(t0 + 30 * HOUR);
  });

  it('device-health cases go to the maintainer, hazards to the owner', () => {
    const dev = { ownerUnit: 'zh-gas', maintainerUnit: 'iot-ops' };
    expect(responsibleUnit(categoryFor(DEFAULT_CATEGORIES, 'gas', 'urgent'), 'urgent', dev)).toBe('zh-gas');
    expect(responsibleUnit(categoryFor(DEFAULT_CATEGORIES, 'low-battery', 'device-health'), 'device-health', dev)).toBe('iot-ops');
    expect(responsibleUnit(categoryFor(DEFAULT_CATEGORIES, 'unheard-of', 'device-health'), 'device-health', dev)).toBe('iot-ops');
  });

  it('case ids count per day in Asia/Shanghai', () => {
    expect(caseId(Date.parse('2026-11-24T16:30:00Z'), 1)).toBe('C-20261125-0001');
    expect(caseId(Date.parse('2026-11-24T15:59:59Z'), 12345)).toBe('C-20261124-12345');
  });
});
