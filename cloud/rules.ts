import { Type, type Static } from '@sinclair/typebox';
import type { Threshold } from '../devices/profile.ts';
import type { Profile } from '../devices/profile.ts';
import { classRank, severityRank, type CaseClass, type Severity } from './categories.ts';

/**
 * Rules as data (docs/domain.md, the case and sensors). A rule set holds rules per device kind (profile id)
 * and per-device overrides (by rule id). Rule kinds:
 * - `threshold`: a value past a limit (`>`, `<`, `==` for flags), with `hysteresis` (an active
 *   rule clears only once the value is back past the limit by this much), `holdMs` (minimum
 *   duration: ignore a breach held shorter, e.g. a tilt from a passing vehicle) and
 *   `emergencyValue` (the limit used in emergency mode);
 * - `rate`: rise faster than `risePerHour` (least-squares slope over `windowMs`, at least `minSpanMs` of data);
 * - `range`: a value outside what the sensor can measure is implausible (a device-health hazard,
 *   and the value is not judged by the point's other rules);
 * - `silence`: no reading for `afterPolls` expected intervals (checked by the scheduler).
 * Each rule names its hazard (the case category), severity and class.
 */

export type PointValue = number | boolean | string;

const RuleId = Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' });
const Hazard = Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' });
const SeverityT = Type.Union((['info', 'minor', 'major', 'critical'] as const).map((t) => Type.Literal(t)));
const ClassT = Type.Union((['urgent', 'routine', 'device-health'] as const).map((t) => Type.Literal(t)));
const Common = { id: RuleId, hazard: Hazard, severity: SeverityT, class: ClassT };

export const ThresholdRule = Type.Object({
  ...Common,
  kind: Type.Literal('threshold'),
  point: Type.String(),
  op: Type.Union([Type.Literal('>'), Type.Literal('<'), Type.Literal('==')]),
  value: Type.Union([Type.Number(), Type.Boolean()]),
  hysteresis: Type.Optional(Type.Number({ minimum: 0 })),
  holdMs: Type.Optional(Type.Integer({ minimum: 0 })),
  emergencyValue: Type.Optional(Type.Union([Type.Number(), Type.Boolean()])),
}, { additionalProperties: false });
export const RateRule = Type.Object({
  ...Common,
  kind: Type.Literal('rate'),
  point: Type.String(),
  risePerHour: Type.Number({ exclusiveMinimum: 0 }),
  windowMs: Type.Integer({ minimum: 1000 }),
  minSpanMs: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
export const RangeRule = Type.Object({
  ...Common,
  kind: Type.Literal('range'),
  point: Type.String(),
  min: Type.Number(),
  max: Type.Number(),
}, { additionalProperties: false });
export const SilenceRule = Type.Object({
  ...Common,
  kind: Type.Literal('silence'),
  afterPolls: Type.Number({ exclusiveMinimum: 0 }),
}, { additionalProperties: false });
export const Rule = Type.Union([ThresholdRule, RateRule, RangeRule, SilenceRule]);
export type ThresholdRule = Static<typeof ThresholdRule>;
export type RateRule = Static<typeof RateRule>;
export type RangeRule = Static<typeof RangeRule>;
export type SilenceRule = Static<typeof SilenceRule>;
export type Rule = Static<typeof Rule>;

/** A per-device override: the rule id and the fields that differ (or `disabled: true`). */
export const RuleOverride = Type.Object({ id: RuleId, disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: true });
export type RuleOverride = Static<typeof RuleOverride> & Partial<Rule>;

export const RuleSet = Type.Object({
  /** Rules per device kind (profile id). */
  kinds: Type.Record(Type.String(), Type.Array(Rule)),
  /** Overrides per device id. */
  devices: Type.Record(Type.String(), Type.Array(RuleOverride), { default: {} }),
}, { additionalProperties: false });
export type RuleSet = { kinds: Record<string, Rule[]>; devices: Record<string, RuleOverride[]> };

export interface Breach {
  hazard: string;
  severity: Severity;
  class: CaseClass;
  thresholdId: string;
  point: string;
  value: PointValue;
  limit: number | boolean;
  op: Threshold['op'] | 'rate' | 'range' | 'silence';
}

/** Does one value breach one threshold? Numbers compare with `>`/`<`; `==` compares exactly (flags). */
export function breaches(t: { op: Threshold['op']; value: number | boolean }, value: PointValue | undefined): boolean {
  if (value === undefined) return false;
  switch (t.op) {
    case '>': return typeof value === 'number' && typeof t.value === 'number' && value > t.value;
    case '<': return typeof value === 'number' && typeof t.value === 'number' && value < t.value;
    case '==': return value === t.value || (typeof t.value === 'boolean' && typeof value === 'number' && (value !== 0) === t.value);
  }
}

/**
 * Stateless evaluation of values against thresholds: at most one breach per hazard, the most
 * severe one (on a tie, the more urgent class, then the first threshold in profile order).
 */
export function evaluate(values: Record<string, PointValue>, thresholds: readonly Threshold[]): Breach[] {
  const worst = new Map<string, Breach>();
  for (const t of thresholds) {
    const value = values[t.point];
    if (!breaches(t, value)) continue;
    keepWorst(worst, {
      hazard: t.hazard, severity: t.severity as Severity, class: t.class as CaseClass,
      thresholdId: t.id, point: t.point, value: value!, limit: t.value, op: t.op,
    });
  }
  return [...worst.values()];
}

function keepWorst(worst: Map<string, Breach>, b: Breach): void {
  const prev = worst.get(b.hazard);
  if (!prev || isWorse(b, prev)) worst.set(b.hazard, b);
}

function isWorse(a: Breach, b: Breach): boolean {
  const s = severityRank(a.severity) - severityRank(b.severity);
  if (s !== 0) return s > 0;
  return classRank(a.class) > classRank(b.class);
}

/** One line a person reads: `level_m 0.92 > 0.85 (level-tier2)`. */
export function describeBreach(b: Breach): string {
  if (b.op === 'rate') return `${b.point} rising ${JSON.stringify(b.value)}/h > ${JSON.stringify(b.limit)}/h (${b.thresholdId})`;
  if (b.op === 'range') return `${b.point} ${JSON.stringify(b.value)} outside the sensor's range (${b.thresholdId})`;
  if (b.op === 'silence') return `no reading for ${JSON.stringify(b.value)} s (${b.thresholdId})`;
  return `${b.point} ${JSON.stringify(b.value)} ${b.op} ${JSON.stringify(b.limit)} (${b.thresholdId})`;
}

// ---- defaults ----------------------------------------------------------------------------------

/** Per point: hysteresis, minimum duration, what the sensor can physically report (implausible outside). */
const POINT_DEFAULTS: Record<string, { hysteresis?: number; holdMs?: number; range?: [number, number] }> = {
  level_m: { hysteresis: 0.05, range: [-0.5, 10] },
  tilt_deg: { hysteresis: 2, holdMs: 2000, range: [0, 180] },
  water_depth_m: { hysteresis: 0.05, range: [0, 5] },
  gas_ch4_ppm: { hysteresis: 500, range: [0, 50_000] },
  gas_h2s_ppm: { hysteresis: 1, range: [0, 1000] },
  battery_pct: { hysteresis: 5, range: [0, 100] },
  pressure_mpa: { hysteresis: 0.02, range: [0, 2.5] },
};

/** Emergency limits (docs/domain.md#emergency-mode: lower water-level tiers during a typhoon). */
const EMERGENCY_VALUES: Record<string, number> = { 'level-tier1': 0.6, 'level-tier2': 0.75, 'level-tier3': 0.9 };

/**
 * The default rule set: each profile's thresholds with hysteresis, hold time and emergency limits,
 * a range rule per known point (implausible values), rise faster than 10 cm/h for water levels,
 * and silence for three poll intervals.
 */
export function defaultRuleSet(profiles: Map<string, Profile>): RuleSet {
  const kinds: Record<string, Rule[]> = {};
  for (const p of profiles.values()) {
    const rules: Rule[] = [];
    for (const t of p.thresholds) {
      const d = POINT_DEFAULTS[t.point] ?? {};
      const r: ThresholdRule = { kind: 'threshold', id: t.id, point: t.point, op: t.op, value: t.value, hazard: t.hazard, severity: t.severity, class: t.class };
      if (d.hysteresis !== undefined && t.op !== '==') r.hysteresis = d.hysteresis;
      if (d.holdMs !== undefined) r.holdMs = d.holdMs;
      if (EMERGENCY_VALUES[t.id] !== undefined) r.emergencyValue = EMERGENCY_VALUES[t.id];
      rules.push(r);
    }
    for (const pt of p.points) {
      const range = POINT_DEFAULTS[pt.key]?.range;
      if (range) rules.push({ kind: 'range', id: `${pt.key.replace(/_/g, '-')}-range`, point: pt.key, min: range[0], max: range[1], hazard: 'implausible', severity: 'minor', class: 'device-health' });
    }
    if (p.points.some((pt) => pt.key === 'level_m')) {
      rules.push({ kind: 'rate', id: 'level-rise', point: 'level_m', risePerHour: 0.1, windowMs: 15 * 60_000, minSpanMs: 5 * 60_000, hazard: 'waterlogging', severity: 'minor', class: 'routine' });
    }
    rules.push({ kind: 'silence', id: 'no-data', afterPolls: 3, hazard: 'offline', severity: 'minor', class: 'device-health' });
    kinds[p.id] = rules;
  }
  return { kinds, devices: {} };
}

/** The rules of one device: its kind's rules with the device's overrides applied. */
export function rulesFor(set: RuleSet, kind: string, device: string): Rule[] {
  const base = set.kinds[kind] ?? [];
  const overrides = new Map((set.devices[device] ?? []).map((o) => [o.id, o]));
  const out: Rule[] = [];
  for (const r of base) {
    const o = overrides.get(r.id);
    if (!o) { out.push(r); continue; }
    if (o.disabled) continue;
    const { disabled: _d, ...rest } = o;
    out.push({ ...r, ...rest } as Rule);
  }
  return out;
}

// ---- stateful engine ---------------------------------------------------------------------------

interface RuleState { active: boolean; since?: number }

interface DeviceState {
  rules: Map<string, RuleState>;
  samples: Map<string, { ts: number; v: number }[]>;
  /** Hazards with an active alarm. */
  alarmed: Set<string>;
}

export interface Evaluation {
  /** Per hazard, the worst rule breaching now (past its limit, held long enough). */
  breaches: Breach[];
  /** Hazards that became active with this reading (raise an alarm). */
  raised: Breach[];
  /** Hazards that were active and are clear now (every rule back past its hysteresis). */
  cleared: string[];
}

export interface RuleEngine {
  evaluate(device: string, kind: string, values: Record<string, PointValue>, ts: number, emergency: boolean): Evaluation;
  /** Seeds the engine with alarms active in the database (at start): their rules count as active. */
  seedActive(device: string, kind: string, hazard: string): void;
  /** A hazard cleared or raised elsewhere (the scheduler's silence check). */
  setAlarmed(device: string, hazard: string, on: boolean): void;
  rules(kind: string, device: string): Rule[];
}

export function createRuleEngine(set: RuleSet): RuleEngine {
  const devices = new Map<string, DeviceState>();
  const state = (device: string): DeviceState => {
    let s = devices.get(device);
    if (!s) devices.set(device, (s = { rules: new Map(), samples: new Map(), alarmed: new Set() }));
    return s;
  };
  const ruleState = (s: DeviceState, id: string): RuleState => {
    let r = s.rules.get(id);
    if (!r) s.rules.set(id, (r = { active: false }));
    return r;
  };

  function clears(r: ThresholdRule, limit: number | boolean, value: PointValue): boolean {
    const hy = r.hysteresis ?? 0;
    if (r.op === '>') return typeof value === 'number' && typeof limit === 'number' && value <= limit - hy;
    if (r.op === '<') return typeof value === 'number' && typeof limit === 'number' && value >= limit + hy;
    return !breaches({ op: '==', value: limit }, value);
  }

  function slopePerHour(samples: { ts: number; v: number }[]): number {
    const n = samples.length;
    const t0 = samples[0].ts;
    let st = 0, sv = 0, stt = 0, stv = 0;
    for (const { ts, v } of samples) {
      const t = (ts - t0) / 3_600_000;
      st += t; sv += v; stt += t * t; stv += t * v;
    }
    const den = n * stt - st * st;
    return den === 0 ? 0 : (n * stv - st * sv) / den;
  }

  return {
    rules: (kind, device) => rulesFor(set, kind, device),
    seedActive(device, kind, hazard) {
      const s = state(device);
      s.alarmed.add(hazard);
      for (const r of rulesFor(set, kind, device)) if (r.hazard === hazard && r.kind !== 'silence') ruleState(s, r.id).active = true;
    },
    setAlarmed(device, hazard, on) {
      const s = state(device);
      if (on) s.alarmed.add(hazard);
      else s.alarmed.delete(hazard);
    },
    evaluate(device, kind, values, ts, emergency) {
      const s = state(device);
      const rules = rulesFor(set, kind, device);
      const worst = new Map<string, Breach>();
      const holding = new Set<string>();
      const implausible = new Set<string>();
      // Range first: an implausible value is not judged by the point's other rules.
      for (const r of rules) {
        if (r.kind !== 'range') continue;
        const v = values[r.point];
        if (v === undefined) continue;
        const bad = typeof v !== 'number' || !Number.isFinite(v) || v < r.min || v > r.max;
        ruleState(s, r.id).active = bad;
        if (bad) {
          implausible.add(r.point);
          keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: v, limit: r.max, op: 'range' });
        }
      }
      for (const r of rules) {
        if (r.kind === 'threshold') {
          const v = values[r.point];
          if (v === undefined || implausible.has(r.point)) continue;
          const limit = emergency && r.emergencyValue !== undefined ? r.emergencyValue : r.value;
          const rs = ruleState(s, r.id);
          if (breaches({ op: r.op, value: limit }, v)) {
            // Readings may arrive out of order (two workers, QoS 1 redelivery): the hold runs from the earliest.
            rs.since = Math.min(rs.since ?? ts, ts);
            if (!r.holdMs || ts - rs.since >= r.holdMs) {
              rs.active = true;
              keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: v, limit, op: r.op });
            }
          } else {
            rs.since = undefined;
            if (rs.active && clears(r, limit, v)) rs.active = false;
          }
          if (rs.active) holding.add(r.hazard);
        } else if (r.kind === 'rate') {
          const v = values[r.point];
          if (typeof v !== 'number' || implausible.has(r.point)) continue;
          let list = s.samples.get(r.point);
          if (!list) s.samples.set(r.point, (list = []));
          list.push({ ts, v });
          while (list.length && list[0].ts < ts - r.windowMs) list.shift();
          const rs = ruleState(s, r.id);
          const span = list.length ? list[list.length - 1].ts - list[0].ts : 0;
          const rate = list.length >= 3 && span >= r.minSpanMs ? slopePerHour(list) : 0;
          // Still rising: the latest value above the window's mean (a spike that fell back is no rise).
          const mean = list.reduce((a, x) => a + x.v, 0) / (list.length || 1);
          rs.active = rate > r.risePerHour && v > mean;
          if (rs.active) {
            holding.add(r.hazard);
            keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: Math.round(rate * 1000) / 1000, limit: r.risePerHour, op: 'rate' });
          }
        }
      }
      for (const h of implausible.size ? [...worst.values()].filter((b) => b.op === 'range').map((b) => b.hazard) : []) holding.add(h);
      const breachesNow = [...worst.values()];
      const raised = breachesNow.filter((b) => !s.alarmed.has(b.hazard));
      for (const b of raised) s.alarmed.add(b.hazard);
      const cleared: string[] = [];
      for (const h of [...s.alarmed]) {
        if (h === 'offline' || holding.has(h) || worst.has(h)) continue;
        // Only hazards these values can speak for: a reading without the point says nothing.
        const speaks = rules.some((r) => r.hazard === h && r.kind !== 'silence' && values[r.point] !== undefined);
        if (!speaks) continue;
        s.alarmed.delete(h);
        cleared.push(h);
      }
      return { breaches: breachesNow, raised, cleared };
    },
  };
}
