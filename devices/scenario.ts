import { CsError } from '../lib/errors.ts';
import type { EngValue } from './codec.ts';
import type { Scenario } from './district.ts';
import { DeviceErrors } from './errors.ts';
import type { Point, Profile } from './profile.ts';

/**
 * Pure pieces of the simulator: a seeded PRNG, the point a scenario drives, and the value
 * a point's `sim` behaviour and scenario give at a moment. No timers, no sockets.
 */

/** A PRNG returning floats in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small, fast 32-bit PRNG; the same seed always gives the same sequence. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a text (a device id) into a seed (FNV-1a), so each device has its own stream. */
export function seedFor(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A point that holds a flag: a bit in a register, a coil or a discrete input. */
export function isFlag(point: Pick<Point, 'type' | 'table'>): boolean {
  return point.type === 'bits' || point.table === 'coil' || point.table === 'discrete';
}

const RAW_LIMITS: Partial<Record<Point['type'], [number, number]>> = {
  int16: [-0x8000, 0x7fff], uint16: [0, 0xffff], int32: [-0x80000000, 0x7fffffff], uint32: [0, 0xffffffff],
};

/** Engineering range an integer point can hold (raw limits × scale + offset); floats are unbounded here. */
export function engRange(point: Pick<Point, 'type' | 'scale' | 'offset'>): [number, number] {
  const raw = RAW_LIMITS[point.type];
  if (!raw) return [-Infinity, Infinity];
  const a = raw[0] * point.scale + point.offset;
  const b = raw[1] * point.scale + point.offset;
  return [Math.min(a, b), Math.max(a, b)];
}

/**
 * The point a scenario drives: its own `point`, else the point of the profile's first threshold,
 * else the first point with a `sim` behaviour. Checks the scenario fits that point;
 * `at` names the scenario in messages (e.g. `devices[3].scenario`).
 */
export function scenarioPoint(profile: Profile, scenario: Scenario, at = 'scenario'): Point {
  const problem = (key: string, message: string) =>
    new CsError(DeviceErrors.SIM_CONFIG_INVALID, `${at}.${key}: ${message}`, { key: `${at}.${key}` });
  const key = scenario.point ?? profile.thresholds[0]?.point ?? profile.points.find((p) => p.sim)?.key;
  const point = profile.points.find((p) => p.key === key);
  if (!point) {
    throw problem('point', `profile ${profile.id} has no point "${key}" (points: ${profile.points.map((p) => p.key).join(', ')})`);
  }
  if (point.type === 'string') throw problem('point', `point "${point.key}" is a string; scenarios drive numbers and flags`);
  if (scenario.kind === 'steady') return point;
  if (scenario.to === undefined) throw problem('to', `is required for a ${scenario.kind} scenario`);
  if (isFlag(point) && typeof scenario.to !== 'boolean') throw problem('to', `point "${point.key}" is a flag: use true or false`);
  if (!isFlag(point) && typeof scenario.to !== 'number') throw problem('to', `point "${point.key}" is a number: use a number`);
  if (scenario.kind === 'slow-rise') {
    if (isFlag(point)) throw problem('kind', `a flag cannot rise slowly; use sudden-breach for "${point.key}"`);
    const ramp = point.sim?.ramp;
    if (scenario.overS === undefined && !(ramp && ramp > 0)) {
      throw problem('overS', `is required for slow-rise unless the point's sim gives a positive ramp`);
    }
  }
  return point;
}

/** Resting value of a point: its sim base (a flag is true when base is non-zero), else zero or false. */
export function baseValue(point: Point): number | boolean {
  const base = point.sim?.base ?? 0;
  return isFlag(point) ? base !== 0 : base;
}

/**
 * The value a point shows `elapsedS` seconds after the simulator started: its base,
 * moved by the scenario when the scenario drives it, plus uniform noise in [-noise, +noise],
 * clamped to the behaviour's min/max and to what the point's type can hold.
 * Flags take no noise. `rng` is called once for a numeric point with noise, never otherwise.
 */
export function behaviourValue(point: Point, scenario: Scenario | undefined, elapsedS: number, rng: Rng): number | boolean {
  const base = baseValue(point);
  let v: number | boolean = base;
  if (scenario && scenario.kind !== 'steady' && scenario.to !== undefined) {
    const after = elapsedS - scenario.afterS;
    if (scenario.kind === 'sudden-breach') {
      v = after >= 0 ? scenario.to : base;
    } else if (typeof base === 'number' && typeof scenario.to === 'number') {
      // slow-rise: linear from base to `to` over `overS` (or at the behaviour's ramp per second).
      const span = scenario.to - base;
      const overS = scenario.overS ?? Math.abs(span) / (point.sim?.ramp ?? 1);
      const f = after <= 0 ? 0 : overS <= 0 ? 1 : Math.min(1, after / overS);
      v = base + span * f;
    }
  }
  if (typeof v === 'boolean') return v;
  const sim = point.sim;
  if (sim && sim.noise > 0) v += (rng() * 2 - 1) * sim.noise;
  if (sim?.min !== undefined) v = Math.max(sim.min, v);
  if (sim?.max !== undefined) v = Math.min(sim.max, v);
  const [lo, hi] = engRange(point);
  return Math.min(hi, Math.max(lo, v));
}

/** Initial value of a point no behaviour drives: text points carry the device id, the rest their base. */
export function initialValue(point: Point, deviceId: string): EngValue {
  if (point.type === 'string') return deviceId.slice(0, (point.length ?? 1) * 2);
  return baseValue(point);
}
