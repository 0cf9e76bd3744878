import { describe, expect, it } from 'vitest';
import type { Scenario } from '../../devices/district.ts';
import { getPoint, loadProfiles, type Point } from '../../devices/profile.ts';
import { behaviourValue, engRange, mulberry32, scenarioPoint, seedFor } from '../../devices/scenario.ts';

const profiles = loadProfiles();
const manhole = profiles.get('manhole-cover')!;
const waterLevel = profiles.get('water-level')!;

function pt(p: Partial<Point>): Point {
  return { key: 'p', name: 'p', table: 'holding', address: 0, type: 'float32', scale: 1, offset: 0, unit: '', writable: false, ...p } as Point;
}

/** A PRNG stand-in that always returns `x` (pure unit, so a stub is fair). */
const fixed = (x: number) => () => x;

describe('seeded noise', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const sa = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(sa);
    expect([c(), c(), c()]).not.toEqual(sa);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });

  it('gives each device its own stream from one seed', () => {
    expect(seedFor(1, 'XZ-WL-001')).not.toBe(seedFor(1, 'XZ-WL-002'));
    expect(seedFor(1, 'XZ-WL-001')).toBe(seedFor(1, 'XZ-WL-001'));
  });
});

describe('behaviour values', () => {
  it('adds uniform noise within plus or minus its amplitude', () => {
    const p = pt({ sim: { base: 10, noise: 2 } });
    expect(behaviourValue(p, undefined, 0, fixed(0))).toBe(8);
    expect(behaviourValue(p, undefined, 0, fixed(0.5))).toBe(10);
    expect(behaviourValue(p, undefined, 0, fixed(0.75))).toBe(11);
  });

  it('clamps to the behaviour min and max', () => {
    const p = pt({ sim: { base: 0, noise: 1, min: 0, max: 0.5 } });
    expect(behaviourValue(p, undefined, 0, fixed(0))).toBe(0);
    expect(behaviourValue(p, undefined, 0, fixed(0.99))).toBe(0.5);
  });

  it('clamps to what the point type holds, so a scaled uint16 never goes negative or past 655.35', () => {
    const p = pt({ type: 'uint16', scale: 0.01, sim: { base: 0, noise: 1 } });
    expect(engRange(p)).toEqual([0, 655.35]);
    expect(behaviourValue(p, undefined, 0, fixed(0))).toBe(0);
    expect(behaviourValue(p, { kind: 'sudden-breach', afterS: 0, to: 900 }, 1, fixed(0.5))).toBe(655.35);
  });

  it('gives a flag its base as a boolean and no noise', () => {
    let calls = 0;
    const rng = () => { calls++; return 0.9; };
    expect(behaviourValue(getPoint(manhole, 'cover_open'), undefined, 0, rng)).toBe(false);
    expect(behaviourValue(getPoint(manhole, 'cover_open'), { kind: 'sudden-breach', afterS: 3, to: true }, 3, rng)).toBe(true);
    expect(calls).toBe(0);
  });

  it('holds the base before a sudden breach and the target from its time on', () => {
    const p = pt({ sim: { base: 0.02, noise: 0 } });
    const s: Scenario = { kind: 'sudden-breach', afterS: 12, to: 0.92 };
    expect(behaviourValue(p, s, 11.99, fixed(0.5))).toBe(0.02);
    expect(behaviourValue(p, s, 12, fixed(0.5))).toBe(0.92);
    expect(behaviourValue(p, s, 500, fixed(0.5))).toBe(0.92);
  });

  it('rises linearly over overS and then stays at the target', () => {
    const p = pt({ sim: { base: 0, noise: 0 } });
    const s: Scenario = { kind: 'slow-rise', afterS: 10, to: 1, overS: 100 };
    expect(behaviourValue(p, s, 10, fixed(0.5))).toBe(0);
    expect(behaviourValue(p, s, 35, fixed(0.5))).toBe(0.25);
    expect(behaviourValue(p, s, 110, fixed(0.5))).toBe(1);
    expect(behaviourValue(p, s, 1000, fixed(0.5))).toBe(1);
  });

  it('rises at the behaviour ramp per second when the scenario gives no overS', () => {
    const p = pt({ sim: { base: 0, noise: 0, ramp: 0.01 } });
    expect(behaviourValue(p, { kind: 'slow-rise', afterS: 0, to: 1 }, 50, fixed(0.5))).toBeCloseTo(0.5, 10);
  });
});

describe('scenario point', () => {
  it('is the scenario point when given', () => {
    expect(scenarioPoint(waterLevel, { kind: 'sudden-breach', point: 'battery_pct', afterS: 0, to: 5 }).key).toBe('battery_pct');
  });

  it('defaults to the point of the profile first threshold', () => {
    expect(scenarioPoint(manhole, { kind: 'steady', afterS: 0 }).key).toBe('tilt_deg');
  });

  it('refuses a breach without a target, naming the key', () => {
    expect(() => scenarioPoint(waterLevel, { kind: 'sudden-breach', afterS: 0 }, 'devices[2].scenario'))
      .toThrow(expect.objectContaining({ code: 'CS_DEV_SIM_CONFIG_INVALID', message: expect.stringContaining('devices[2].scenario.to: is required') }));
  });

  it('refuses a numeric target for a flag and a slow rise of a flag', () => {
    expect(() => scenarioPoint(manhole, { kind: 'sudden-breach', point: 'cover_open', afterS: 0, to: 1 })).toThrow(/is a flag: use true or false/);
    expect(() => scenarioPoint(manhole, { kind: 'slow-rise', point: 'cover_open', afterS: 0, to: true, overS: 5 })).toThrow(/cannot rise slowly/);
  });

  it('refuses a slow rise with neither overS nor a ramp', () => {
    expect(() => scenarioPoint(waterLevel, { kind: 'slow-rise', point: 'level_m', afterS: 0, to: 1 })).toThrow(/overS: is required/);
  });
});
