import { describe, expect, it } from 'vitest';
import { loadProfiles, type Threshold } from '../../devices/profile.ts';
import { breaches, createRuleEngine, defaultRuleSet, judgeValues, rulesFor, type PointValue } from '../../cloud/rules.ts';
import { categoryFor, deadlineFor, DEFAULT_CATEGORIES, responsibleUnit } from '../../cloud/categories.ts';
import { caseId } from '../../cloud/cases/index.ts';

const profiles = loadProfiles();
const defaults = defaultRuleSet(profiles);
const [manhole, level, pipeline] = ['manhole-cover', 'water-level', 'pipeline'];
/** The stateless judgement of one reading by a kind's default rules (as a replayed reading is judged). */
const evaluate = (values: Record<string, PointValue>, kind: string) => judgeValues(rulesFor(defaults, kind, 'D-1'), values, false);
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
    // Monday 14:00 in Zhuhai: one working day (7 working hours) ends Tuesday at the end of the morning.
    ['waterlogging', 'routine', 22],
    ['pressure-low', 'urgent', 8],
    ['pressure-high', 'routine', 22],
    ['low-battery', 'device-health', 46],
    ['unheard-of', 'routine', 22],
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

describe('rule engine (stateful rules as data)', () => {
  const set = defaultRuleSet(profiles);
  const S = 1000;
  const hazards = (e: { breaches: { hazard: string }[] }) => e.breaches.map((b) => b.hazard);

  it('clears a water level only once it is back below the limit by the hysteresis', () => {
    const engine = createRuleEngine(set);
    const first = engine.evaluate('WL', 'water-level', { level_m: 0.9 }, 0, false);
    expect(first.raised.map((b) => b.thresholdId)).toEqual(['level-tier2']);
    // 0.84 is below tier 2 (0.85) but inside its hysteresis (0.05): no breach of tier 2, tier 1 still breaches, not cleared.
    const band = engine.evaluate('WL', 'water-level', { level_m: 0.84 }, S, false);
    expect(band.breaches.map((b) => b.thresholdId)).toEqual(['level-tier1']);
    expect(band.cleared).toEqual([]);
    expect(engine.evaluate('WL', 'water-level', { level_m: 0.68 }, 2 * S, false).cleared).toEqual([]);
    expect(engine.evaluate('WL', 'water-level', { level_m: 0.64 }, 3 * S, false).cleared).toEqual(['waterlogging']);
    expect(engine.evaluate('WL', 'water-level', { level_m: 0.9 }, 4 * S, false).raised).toHaveLength(1);
  });

  it('ignores a cover tilt held less than two seconds (a passing vehicle)', () => {
    const engine = createRuleEngine(set);
    expect(hazards(engine.evaluate('MH', 'manhole-cover', { tilt_deg: 25 }, 0, false))).toEqual([]);
    expect(hazards(engine.evaluate('MH', 'manhole-cover', { tilt_deg: 25 }, 1 * S, false))).toEqual([]);
    expect(hazards(engine.evaluate('MH', 'manhole-cover', { tilt_deg: 1 }, 1.5 * S, false))).toEqual([]);
    expect(hazards(engine.evaluate('MH', 'manhole-cover', { tilt_deg: 25 }, 3 * S, false))).toEqual([]);
    expect(hazards(engine.evaluate('MH', 'manhole-cover', { tilt_deg: 25 }, 5 * S, false))).toEqual(['cover-open']);
  });

  it('raises a water level rising faster than 10 cm/h over at least five minutes', () => {
    const engine = createRuleEngine(set);
    let last;
    // 0.3 m/h: 0.5 cm a minute, for six minutes, still far below tier 1.
    for (let m = 0; m <= 6; m++) last = engine.evaluate('WL', 'water-level', { level_m: 0.1 + m * 0.005 }, m * 60 * S, false);
    expect(last!.breaches).toMatchObject([{ hazard: 'waterlogging', thresholdId: 'level-rise', class: 'routine', op: 'rate' }]);
    const slow = createRuleEngine(set);
    for (let m = 0; m <= 6; m++) last = slow.evaluate('WL', 'water-level', { level_m: 0.1 + m * 0.001 }, m * 60 * S, false);
    expect(last!.breaches).toEqual([]);
  });

  it('calls an impossible value implausible, a device-health hazard, and does not judge it as a flood', () => {
    const engine = createRuleEngine(set);
    const e = engine.evaluate('WL', 'water-level', { level_m: 42 }, 0, false);
    expect(e.breaches).toMatchObject([{ hazard: 'implausible', class: 'device-health', op: 'range' }]);
  });

  it('uses the emergency limits in emergency mode', () => {
    const engine = createRuleEngine(set);
    expect(hazards(engine.evaluate('WL', 'water-level', { level_m: 0.65 }, 0, false))).toEqual([]);
    expect(engine.evaluate('WL2', 'water-level', { level_m: 0.65 }, 0, true).breaches).toMatchObject([{ thresholdId: 'level-tier1', limit: 0.6 }]);
  });

  it('applies per-device overrides over the kind\'s rules', () => {
    const custom = { ...set, devices: { 'WL-LOW': [{ id: 'level-tier1', value: 0.3 }, { id: 'battery-low', disabled: true }] } };
    const engine = createRuleEngine(custom);
    expect(hazards(engine.evaluate('WL-LOW', 'water-level', { level_m: 0.35, battery_pct: 5 }, 0, false))).toEqual(['waterlogging']);
    expect(hazards(engine.evaluate('WL-STD', 'water-level', { level_m: 0.35, battery_pct: 5 }, 0, false))).toEqual(['low-battery']);
  });
  it('counts a device changed (takeChanged) exactly when a reading moved its snapshot (exportState)', () => {
    const engine = createRuleEngine(set);
    const all = () => true;
    const steps: [string, string, Record<string, PointValue>, string?][] = [
      ['M', manhole, { tilt_deg: 0.5, battery_pct: 80 }, 'G1'], ['M', manhole, { tilt_deg: 0.6, battery_pct: 80 }, 'G1'],
      ['M', manhole, { tilt_deg: 12 }, 'G1'], ['M', manhole, { tilt_deg: 13 }, 'G1'], ['M', manhole, { tilt_deg: 1 }, 'G1'],
      ['M', manhole, { tilt_deg: 1 }, 'G2'], ['M', manhole, { tilt_deg: 1 }],
      ['W', level, { level_m: 0.5 }, 'G1'], ['W', level, { level_m: 0.5 }, 'G1'], ['W', level, { level_m: 42 }, 'G1'], ['W', level, { level_m: 42 }, 'G1'],
    ];
    const before = new Map<string, string>();
    const seen: boolean[] = [];
    steps.forEach(([device, kind, values, gateway], i) => {
      engine.evaluate(device, kind, values, i * 1000, false, gateway);
      const now = JSON.stringify(engine.exportState(device));
      expect(engine.takeChanged(all).includes(device)).toBe(now !== before.get(device));
      seen.push(now !== before.get(device));
      before.set(device, now);
    });
    // Steady values leave a threshold-only device unchanged; a rate window moves with every plausible reading.
    expect(seen).toEqual([true, false, true, false, true, true, false, true, true, true, false]);
  });
});

describe('an alarmed hazard no rule watches any longer', () => {
  const withoutWaterlogging = { ...defaults, kinds: { ...defaults.kinds, [level]: defaults.kinds[level]!.filter((r) => r.hazard !== 'waterlogging') } };

  it('is cleared by the next reading once a rule-set change on this worker dropped its every rule', () => {
    const engine = createRuleEngine(defaults);
    expect(engine.evaluate('WL-1', level, { level_m: 0.9 }, 0, false).raised.map((b) => b.hazard)).toEqual(['waterlogging']);
    engine.setRuleSet(withoutWaterlogging);
    expect(engine.evaluate('WL-1', level, { level_m: 0.9 }, 1000, false).cleared).toEqual(['waterlogging']);
  });

  it('is cleared by the next reading when seeded at start under rules that no longer watch it', () => {
    const engine = createRuleEngine(withoutWaterlogging);
    engine.seedActive('WL-1', level, 'waterlogging', undefined, true);
    expect(engine.evaluate('WL-1', level, { battery_pct: 80 }, 0, false).cleared).toEqual(['waterlogging']);
  });

  it('is kept when seeded for a partition taken over (that worker\'s rules may be a moment behind another\'s)', () => {
    const engine = createRuleEngine(withoutWaterlogging);
    engine.seedActive('WL-1', level, 'waterlogging');
    expect(engine.evaluate('WL-1', level, { level_m: 0.9, battery_pct: 80 }, 0, false).cleared).toEqual([]);
  });

  it('is kept when its rules come back before the next reading', () => {
    const engine = createRuleEngine(defaults);
    engine.evaluate('WL-1', level, { level_m: 0.9 }, 0, false);
    engine.setRuleSet(withoutWaterlogging);
    engine.setRuleSet(defaults);
    expect(engine.evaluate('WL-1', level, { level_m: 0.9 }, 1000, false).cleared).toEqual([]);
  });
});

describe('rule state to save', () => {
  it('marks a device changed again when its save failed, so that the next save retries it', () => {
    const engine = createRuleEngine(defaults);
    engine.evaluate('WL-1', level, { level_m: 0.9 }, 0, false);
    const all = () => true;
    expect(engine.takeChanged(all)).toEqual(['WL-1']);
    expect(engine.takeChanged(all)).toEqual([]);
    engine.markChanged(['WL-1', 'never-seen']);
    expect(engine.takeChanged(all)).toEqual(['WL-1']);
  });
});
