import { resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { CaseClassT, SeverityT } from '../lib/vocabulary.ts';
import { check, type SchemaProblem } from '../lib/schema.ts';
import { LibErrors } from '../lib/errors.ts';
import { DeviceErrors } from './errors.ts';
import type { Profile } from './profile.ts';

/**
 * The rule set as data, shared by the cloud (cloud/rules.ts, the stateful engine) and the edge
 * (edge/alarms.ts, the local alarms): one schema, one set of defaults, so both judge a value alike
 * (docs/domain.md#sensors, docs/domain.md#emergency-mode). Rules per device kind (profile id), overrides per device.
 * Rule kinds:
 * - `threshold`: a value past a limit (`>`, `<`, `==` for flags), with `hysteresis` (an active
 *   rule clears only once the value is back past the limit by this much), `holdMs` (minimum
 *   duration: ignore a breach held shorter, e.g. a tilt from a passing vehicle) and
 *   `emergencyValue` (the limit used in emergency mode);
 * - `rate`: rise faster than `risePerHour` (least-squares slope over `windowMs`, at least `minSpanMs` of data);
 * - `range`: a value outside what the sensor can measure is implausible (a device-health hazard,
 *   and the value is not judged by the point's other rules);
 * - `silence`: no reading for `afterPolls` expected intervals (checked by the cloud's scheduler).
 * Each rule names its hazard (the case category), severity and class.
 */

export type PointValue = number | boolean | string;

const RuleId = Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' });
const Hazard = Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' });
const Common = { id: RuleId, hazard: Hazard, severity: SeverityT, class: CaseClassT };
export const ThresholdOp = Type.Union([Type.Literal('>'), Type.Literal('<'), Type.Literal('==')]);
export type ThresholdOp = Static<typeof ThresholdOp>;

export const ThresholdRule = Type.Object({
  ...Common,
  kind: Type.Literal('threshold'),
  point: Type.String(),
  op: ThresholdOp,
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

/** The schema of each rule kind, by its `kind`. */
export const RULE_KINDS = { threshold: ThresholdRule, rate: RateRule, range: RangeRule, silence: SilenceRule } as const;

/**
 * A per-device override: the rule id and the fields that differ (or `disabled: true`). The fields
 * are checked merged with the rule they change (`checkRuleSet`): keys and types of its kind, a
 * point of the device's profile.
 */
export const RuleOverride = Type.Object({ id: RuleId, disabled: Type.Optional(Type.Boolean()) }, { additionalProperties: true });
export type RuleOverride = { id: string; disabled?: boolean } & Partial<Rule>;

export const RuleSet = Type.Object({
  /** Rules per device kind (profile id). */
  kinds: Type.Record(Type.String(), Type.Array(Rule)),
  /** Overrides per device id. */
  devices: Type.Record(Type.String(), Type.Array(RuleOverride), { default: {} }),
}, { additionalProperties: false });
export type RuleSet = { kinds: Record<string, Rule[]>; devices: Record<string, RuleOverride[]> };

// ---- judging one value -------------------------------------------------------------------------

/** Does one value breach one limit? Numbers compare with `>`/`<`; `==` compares exactly (flags). */
export function breaches(t: { op: ThresholdOp; value: number | boolean }, value: PointValue | undefined): boolean {
  if (value === undefined) return false;
  switch (t.op) {
    case '>': return typeof value === 'number' && typeof t.value === 'number' && value > t.value;
    case '<': return typeof value === 'number' && typeof t.value === 'number' && value < t.value;
    case '==': return value === t.value || (typeof t.value === 'boolean' && typeof value === 'number' && (value !== 0) === t.value);
  }
}

/** Is an active threshold rule clear at this value: back past its limit by its hysteresis? */
export function clears(r: Pick<ThresholdRule, 'op' | 'hysteresis'>, limit: number | boolean, value: PointValue): boolean {
  const hy = r.hysteresis ?? 0;
  if (r.op === '>') return typeof value === 'number' && typeof limit === 'number' && value <= limit - hy;
  if (r.op === '<') return typeof value === 'number' && typeof limit === 'number' && value >= limit + hy;
  return !breaches({ op: '==', value: limit }, value);
}

/** The limit in force: `emergencyValue` in emergency mode (the edge: fast mode) when the rule has one. */
export function limitOf(r: ThresholdRule, emergency: boolean): number | boolean {
  return emergency && r.emergencyValue !== undefined ? r.emergencyValue : r.value;
}

/** Is the value one the sensor cannot report (outside a range rule)? */
export function implausible(r: RangeRule, v: PointValue): boolean {
  return typeof v !== 'number' || !Number.isFinite(v) || v < r.min || v > r.max;
}

/** Points whose value in `values` a range rule of `rules` calls implausible. */
export function implausiblePoints(rules: readonly Rule[], values: Record<string, PointValue>): Set<string> {
  const out = new Set<string>();
  for (const r of rules) if (r.kind === 'range' && values[r.point] !== undefined && implausible(r, values[r.point])) out.add(r.point);
  return out;
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
 * and silence for three poll intervals. The cloud and the edge both start from it.
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

/** The rules of one device: its kind's rules with the device's overrides applied (disabled ones left out). */
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

/**
 * What the schema cannot check: every kind is a known profile, every point a point of that
 * profile, rule ids unique within a kind, a range's min not above its max, and every override names a rule of some kind (ids are shared across kinds). Each
 * override merged with the rule it changes must be a valid rule of its kind (keys and types) whose
 * point the device has. `deviceKinds` (device id -> profile id, from the district or the edge
 * config) pins a device to its kind; an override of a device not in it (the rule file is the
 * city's, an edge knows its own devices) must fit some kind that has the rule.
 */
export function checkRuleSet(set: RuleSet, profiles: Map<string, Profile>, under = '', deviceKinds?: ReadonlyMap<string, string>): SchemaProblem[] {
  const at = under ? `${under}.` : '';
  const problems: SchemaProblem[] = [];
  const ids = new Set<string>();
  for (const [kind, rules] of Object.entries(set.kinds)) {
    const profile = profiles.get(kind);
    if (!profile) {
      problems.push({ key: `${at}kinds.${kind}`, message: `unknown device kind "${kind}" (profiles: ${[...profiles.keys()].join(', ')})` });
      continue;
    }
    const points = new Set(profile.points.map((p) => p.key));
    const here = new Set<string>();
    rules.forEach((r, i) => {
      ids.add(r.id);
      // A rule's hold, hysteresis and alarm state and a device's override are keyed by its id: two rules of one id would share them.
      if (here.has(r.id)) problems.push({ key: `${at}kinds.${kind}[${i}].id`, message: `a second rule "${r.id}" for "${kind}" (ids are unique within a kind)` });
      here.add(r.id);
      if (r.kind !== 'silence' && !points.has(r.point)) {
        problems.push({ key: `${at}kinds.${kind}[${i}].point`, message: `profile "${kind}" has no point "${r.point}"` });
      }
      if (r.kind === 'range' && r.min > r.max) problems.push({ key: `${at}kinds.${kind}[${i}].min`, message: `${r.min} is above max ${r.max}: every value would be implausible` });
    });
  }
  for (const [device, overrides] of Object.entries(set.devices ?? {})) {
    const seen = new Set<string>();
    (Array.isArray(overrides) ? overrides : []).forEach((o, i) => {
      const key = `${at}devices.${device}[${i}]`;
      if (!ids.has(o.id)) {
        problems.push({ key: `${key}.id`, message: `no rule "${o.id}" in any kind` });
        return;
      }
      if (seen.has(o.id)) problems.push({ key: `${key}.id`, message: `a second override of rule "${o.id}" for this device (one per rule)` });
      seen.add(o.id);
      problems.push(...overrideProblems(set, profiles, device, deviceKinds?.get(device), o, key));
    });
  }
  return problems.slice(0, 10);
}

/** Why an override cannot apply: checked against the device's kind, or against every kind that has the rule. */
function overrideProblems(set: RuleSet, profiles: Map<string, Profile>, device: string, kind: string | undefined, o: RuleOverride, key: string): SchemaProblem[] {
  if (kind !== undefined) {
    const base = (set.kinds[kind] ?? []).find((r) => r.id === o.id);
    if (!base) return [{ key: `${key}.id`, message: `device "${device}" is a ${kind}, which has no rule "${o.id}"` }];
    return mergedProblems(base, o, profiles.get(kind), `device "${device}" (${kind})`, key);
  }
  // A device this config does not know: valid if it fits some kind with the rule; else say why for the first.
  let first: SchemaProblem[] | undefined;
  for (const [k, rules] of Object.entries(set.kinds)) {
    const base = rules.find((r) => r.id === o.id);
    if (!base) continue;
    const p = mergedProblems(base, o, profiles.get(k), `profile "${k}"`, key);
    if (!p.length) return [];
    first ??= p;
  }
  return first ?? [];
}

/** The override merged into `base` must be a valid rule of its kind, on a point of `profile`. */
function mergedProblems(base: Rule, o: RuleOverride, profile: Profile | undefined, whose: string, key: string): SchemaProblem[] {
  const { disabled: _d, ...rest } = o;
  const merged = { ...base, ...rest } as Record<string, unknown>;
  const schema = RULE_KINDS[merged.kind as keyof typeof RULE_KINDS];
  if (!schema) return [{ key: `${key}.kind`, message: `unknown rule kind ${JSON.stringify(merged.kind)} (kinds: ${Object.keys(RULE_KINDS).join(', ')})` }];
  const out: SchemaProblem[] = [];
  const known = Object.keys(schema.properties);
  for (const k of Object.keys(rest)) {
    if (!known.includes(k)) out.push({ key: `${key}.${k}`, message: `unknown key (a ${merged.kind} rule has: ${known.filter((x) => x !== 'id').join(', ')})` });
  }
  const result = check(schema, Object.fromEntries(Object.entries(merged).filter(([k]) => known.includes(k))));
  if (!result.ok) out.push(...result.problems.map((p) => ({ key: p.key === '(root)' ? key : `${key}.${p.key}`, message: p.message })));
  if (result.ok && merged.kind === 'range' && (merged.min as number) > (merged.max as number)) {
    out.push({ key: `${key}.${'min' in rest ? 'min' : 'max'}`, message: `min ${String(merged.min)} is above max ${String(merged.max)}: every value would be implausible` });
  }
  const point = merged.point;
  if (profile && merged.kind !== 'silence' && typeof point === 'string' && !profile.points.some((p) => p.key === point)) {
    out.push({ key: `${key}.point`, message: `${whose} has no point "${point}"` });
  }
  return out;
}

/**
 * Reads a rule-set file (YAML or JSON): the one file a city points both the cloud (`rules` in its
 * config) and every edge (`rules` in the edge config) at, so that both judge by the same rules.
 * Every problem, of form or of reference, is CS_DEV_RULES_INVALID naming the file and the key.
 */
export function loadRuleSet(file: string, profiles: Map<string, Profile>, deviceKinds?: ReadonlyMap<string, string>): RuleSet {
  let set: RuleSet;
  try {
    set = loadConfig(file, RuleSet) as RuleSet;
  } catch (err) {
    if (err instanceof ConfigError && err.code === LibErrors.CONFIG_INVALID) throw new ConfigError(DeviceErrors.RULES_INVALID, err.file, err.problems);
    throw err;
  }
  const problems = checkRuleSet(set, profiles, '', deviceKinds);
  if (problems.length) throw new ConfigError(DeviceErrors.RULES_INVALID, resolve(file), problems);
  return set;
}
