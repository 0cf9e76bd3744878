import { classRank, severityRank, type CaseClass, type Severity } from '../lib/vocabulary.ts';
import {
  breaches, clears, implausible, implausiblePoints, limitOf, rulesFor,
  type PointValue, type Rule, type RuleSet, type ThresholdOp,
} from '../devices/rules.ts';

/**
 * The cloud's rule engine. The rule set itself (schema, defaults, per-device overrides) lives in
 * devices/rules.ts, shared with the edge's local alarms; this module keeps what only the cloud
 * does: the stateful evaluation (hold times, hysteresis, rate windows, active alarms) of live
 * readings, and the stateless judgement of replayed ones through the same rules.
 */

export {
  breaches, checkRuleSet, defaultRuleSet, Rule, RuleOverride, RuleSet, rulesFor,
  RangeRule, RateRule, SilenceRule, ThresholdRule, type PointValue,
} from '../devices/rules.ts';

export interface Breach {
  hazard: string;
  severity: Severity;
  class: CaseClass;
  thresholdId: string;
  point: string;
  value: PointValue;
  limit: number | boolean;
  op: ThresholdOp | 'rate' | 'range' | 'silence';
  /** Judged by an edge's local alarm (cloud/edge-alarms/), not by the cloud's rules: the alarm and case say so. */
  origin?: 'edge';
}

function keepWorst(worst: Map<string, Breach>, b: Breach): void {
  const prev = worst.get(b.hazard);
  if (!prev || isWorse(b, prev)) worst.set(b.hazard, b);
}

function isWorse(a: Breach, b: Breach): boolean {
  const s = severityRank(a.severity) - severityRank(b.severity);
  if (s !== 0) return s > 0;
  // A lower class rank is more pressing (lib/vocabulary.ts).
  return classRank(a.class) < classRank(b.class);
}

/**
 * Stateless judgement of one set of values by a device's rules (overrides applied, disabled rules
 * left out): range rules first (an implausible value is not judged by its point's other rules),
 * then thresholds at the limit in force, without hold times or hysteresis; rate and silence rules
 * need history and say nothing here. At most one breach per hazard, the worst (severity, then
 * class, then rule order). Used for replayed (historical) readings; moves no state.
 */
export function judgeValues(rules: readonly Rule[], values: Record<string, PointValue>, emergency: boolean): Breach[] {
  const worst = new Map<string, Breach>();
  const bad = implausiblePoints(rules, values);
  for (const r of rules) {
    if (r.kind === 'range' && values[r.point] !== undefined && implausible(r, values[r.point])) {
      keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: values[r.point], limit: r.max, op: 'range' });
    }
  }
  for (const r of rules) {
    if (r.kind !== 'threshold' || bad.has(r.point)) continue;
    const v = values[r.point];
    const limit = limitOf(r, emergency);
    if (!breaches({ op: r.op, value: limit }, v)) continue;
    keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: v!, limit, op: r.op });
  }
  return [...worst.values()];
}

/** One line a person reads: `level_m 0.92 > 0.85 (level-tier2)`. */
export function describeBreach(b: Breach): string {
  if (b.origin === 'edge') return `${describeBreach({ ...b, origin: undefined })}, raised at the edge`;
  if (b.op === 'rate') return `${b.point} rising ${JSON.stringify(b.value)}/h > ${JSON.stringify(b.limit)}/h (${b.thresholdId})`;
  if (b.op === 'range') return `${b.point} ${JSON.stringify(b.value)} outside the sensor's range (${b.thresholdId})`;
  if (b.op === 'silence') return `no reading for ${JSON.stringify(b.value)} s (${b.thresholdId})`;
  return `${b.point} ${JSON.stringify(b.value)} ${b.op} ${JSON.stringify(b.limit)} (${b.thresholdId})`;
}

// ---- stateful engine ---------------------------------------------------------------------------

interface RuleState { active: boolean; since?: number }

interface DeviceState {
  rules: Map<string, RuleState>;
  samples: Map<string, { ts: number; v: number }[]>;
  /** Hazards with an active alarm. */
  alarmed: Set<string>;
  /**
   * Alarmed hazards no rule of the device watches any longer: dropped by a rule-set change on this worker, or
   * seeded at start under rules that no longer watch them. The next reading clears them (nothing else could).
   */
  unwatched?: Set<string>;
  /** The gateway its last reading came through (its stream partition, docs/architecture.md#partitions). */
  gateway?: string;
  /** Its device kind (profile id), as last evaluated: which rules its state belongs to when the rule set changes. */
  kind?: string;
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
  /** A live reading: moves hold times, hysteresis, rate windows and the active alarms. */
  evaluate(device: string, kind: string, values: Record<string, PointValue>, ts: number, emergency: boolean, gateway?: string): Evaluation;
  /** A replayed (historical) reading: the same rules, judged statelessly (`judgeValues`); moves nothing. */
  judge(device: string, kind: string, values: Record<string, PointValue>, emergency: boolean): Breach[];
  /**
   * An alarm active in the database (seeded at start, or raised at the edge): the hazard counts
   * as alarmed and its rules (only `rule` when given) as active, so it clears only past hysteresis.
   * `unwatchedClears` (the seed at start, under the configuration in force): a hazard no rule of the
   * device watches any longer is cleared by its next reading.
   */
  seedActive(device: string, kind: string, hazard: string, rule?: string, unwatchedClears?: boolean): void;
  /** A hazard cleared or raised elsewhere (the scheduler's silence check). */
  setAlarmed(device: string, hazard: string, on: boolean): void;
  rules(kind: string, device: string): Rule[];
  /**
   * Drops the state (hold times, hysteresis, rate windows, alarms) of the devices `which` picks, by
   * device and the gateway of its last reading: their stream partition moved to another worker
   * (docs/architecture.md#partitions). Resolves the devices dropped.
   */
  forget(which: (device: string, gateway: string | undefined) => boolean): string[];
  /**
   * The devices whose state (exportState) changed since last asked, among those `which` picks (they then count as
   * unchanged): a reading that moved no hold time, hysteresis or rate window leaves its device unchanged.
   */
  takeChanged(which: (device: string, gateway: string | undefined) => boolean): string[];
  /** Marks devices changed again (their state's save failed: the next save retries it). */
  markChanged(devices: string[]): void;
  /** A device's hold times, hysteresis and rate windows as JSON-safe data (alarms left out: the database has them). */
  exportState(device: string): RuleSnapshot | undefined;
  /** Restores what `exportState` gave (another worker's), replacing the device's state but its alarms. */
  importState(device: string, snap: RuleSnapshot): void;
  /** The rule set in force. */
  ruleSet(): RuleSet;
  /**
   * Puts a new rule set in force (configuration as data, cloud/config/): a rule whose id and
   * definition (for that device, overrides applied) are unchanged keeps its hold time and
   * hysteresis state; a changed or removed rule starts afresh; rate windows are kept while the
   * point's rate rules are unchanged. Active alarms are kept (the database has them); one whose hazard
   * no rule of the device watches any longer is cleared by the device's next reading.
   */
  setRuleSet(next: RuleSet): void;
}

/** The hazards a device's rules watch (silence aside: the case clock's offline check). */
function watchedHazards(rules: readonly Rule[]): Set<string> {
  return new Set(rules.filter((r) => r.kind !== 'silence').map((r) => r.hazard));
}

/** JSON with object keys sorted: two definitions compare equal whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x));
}

/** One device's rule state as data: its gateway, per rule [id, active, since], per rate point its samples [ts, v]. */
export interface RuleSnapshot {
  g?: string;
  r: [string, boolean, number | null][];
  s: [string, [number, number][]][];
}

export function createRuleEngine(initial: RuleSet): RuleEngine {
  let set = initial;
  const devices = new Map<string, DeviceState>();
  const changed = new Set<string>();
  const state = (device: string): DeviceState => {
    let s = devices.get(device);
    if (!s) devices.set(device, (s = { rules: new Map(), samples: new Map(), alarmed: new Set() }));
    return s;
  };
  const ruleState = (s: DeviceState, id: string): RuleState => {
    let r = s.rules.get(id);
    if (!r) { s.rules.set(id, (r = { active: false })); dirty = true; }
    return r;
  };
  // Whether the evaluation in hand moved the device's snapshot (exportState): only then is it marked changed.
  let dirty = false;

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
    ruleSet: () => set,
    setRuleSet(next) {
      const prev = set;
      set = next;
      for (const [device, s] of devices) {
        if (s.kind === undefined) {
          if (s.rules.size || s.samples.size) changed.add(device);
          s.rules.clear(); s.samples.clear(); continue;
        }
        const before = new Map(rulesFor(prev, s.kind, device).map((r) => [r.id, canonical(r)]));
        const after = new Map(rulesFor(next, s.kind, device).map((r) => [r.id, canonical(r)]));
        const watchedAfter = watchedHazards(rulesFor(next, s.kind, device));
        for (const h of s.alarmed) {
          if (watchedAfter.has(h)) s.unwatched?.delete(h);
          else if (h !== 'offline') (s.unwatched ??= new Set()).add(h);
        }
        for (const id of [...s.rules.keys()]) if (before.get(id) !== after.get(id)) { s.rules.delete(id); changed.add(device); }
        const rates = (m: Map<string, string>, point: string) => [...m.values()].filter((d) => { const r = JSON.parse(d) as Rule; return r.kind === 'rate' && r.point === point; }).join();
        for (const point of [...s.samples.keys()]) if (rates(before, point) !== rates(after, point)) { s.samples.delete(point); changed.add(device); }
      }
    },
    rules: (kind, device) => rulesFor(set, kind, device),
    judge: (device, kind, values, emergency) => judgeValues(rulesFor(set, kind, device), values, emergency),
    seedActive(device, kind, hazard, rule, unwatchedClears) {
      const s = state(device);
      s.kind = kind;
      s.alarmed.add(hazard);
      if (unwatchedClears && hazard !== 'offline' && !watchedHazards(rulesFor(set, kind, device)).has(hazard)) (s.unwatched ??= new Set()).add(hazard);
      for (const r of rulesFor(set, kind, device)) {
        if (r.hazard === hazard && r.kind !== 'silence' && (rule === undefined || r.id === rule)) ruleState(s, r.id).active = true;
      }
      changed.add(device);
    },
    setAlarmed(device, hazard, on) {
      const s = state(device);
      if (on) s.alarmed.add(hazard);
      else s.alarmed.delete(hazard);
    },
    markChanged(list) {
      for (const d of list) if (devices.has(d)) changed.add(d);
    },
    takeChanged(which) {
      const out = [...changed].filter((d) => which(d, devices.get(d)?.gateway));
      for (const d of out) changed.delete(d);
      return out;
    },
    exportState(device) {
      const s = devices.get(device);
      if (!s) return undefined;
      return {
        ...(s.gateway !== undefined ? { g: s.gateway } : {}),
        r: [...s.rules].map(([id, r]) => [id, r.active, r.since ?? null]),
        s: [...s.samples].map(([pt, list]) => [pt, list.map((x) => [x.ts, x.v] as [number, number])]),
      };
    },
    importState(device, snap) {
      const s = state(device);
      s.gateway = snap.g ?? s.gateway;
      s.rules = new Map(snap.r.map(([id, active, since]) => [id, since === null ? { active } : { active, since }]));
      s.samples = new Map(snap.s.map(([pt, list]) => [pt, list.map(([ts, v]) => ({ ts, v }))]));
    },
    forget(which) {
      const out: string[] = [];
      for (const [d, s] of devices) if (which(d, s.gateway)) out.push(d);
      for (const d of out) { devices.delete(d); changed.delete(d); }
      return out;
    },
    evaluate(device, kind, values, ts, emergency, gateway) {
      const s = state(device);
      dirty = false;
      if (gateway !== undefined && s.gateway !== gateway) { s.gateway = gateway; dirty = true; }
      s.kind = kind;
      const rules = rulesFor(set, kind, device);
      const worst = new Map<string, Breach>();
      const holding = new Set<string>();
      const bad = new Set<string>();
      // Range first: an implausible value is not judged by the point's other rules.
      for (const r of rules) {
        if (r.kind !== 'range') continue;
        const v = values[r.point];
        if (v === undefined) continue;
        const out = implausible(r, v);
        const rs = ruleState(s, r.id);
        if (rs.active !== out) { rs.active = out; dirty = true; }
        if (out) {
          bad.add(r.point);
          keepWorst(worst, { hazard: r.hazard, severity: r.severity, class: r.class, thresholdId: r.id, point: r.point, value: v, limit: r.max, op: 'range' });
        }
      }
      for (const r of rules) {
        if (r.kind === 'threshold') {
          const v = values[r.point];
          if (v === undefined || bad.has(r.point)) continue;
          const limit = limitOf(r, emergency);
          const rs = ruleState(s, r.id);
          const { active, since } = rs;
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
          if (rs.active !== active || rs.since !== since) dirty = true;
          if (rs.active) holding.add(r.hazard);
        } else if (r.kind === 'rate') {
          const v = values[r.point];
          if (typeof v !== 'number' || bad.has(r.point)) continue;
          let list = s.samples.get(r.point);
          if (!list) s.samples.set(r.point, (list = []));
          list.push({ ts, v });
          dirty = true;
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
      for (const h of bad.size ? [...worst.values()].filter((b) => b.op === 'range').map((b) => b.hazard) : []) holding.add(h);
      const breachesNow = [...worst.values()];
      const raised = breachesNow.filter((b) => !s.alarmed.has(b.hazard));
      for (const b of raised) s.alarmed.add(b.hazard);
      const cleared: string[] = [];
      for (const h of s.alarmed.size ? [...s.alarmed] : []) {
        if (h === 'offline' || holding.has(h) || worst.has(h)) continue;
        // Only hazards these values can speak for: a reading without the point says nothing. A hazard no
        // rule of the device watches any longer (removed or disabled since it was raised) clears at its
        // next reading: nothing else ever could.
        const orphan = s.unwatched?.has(h) === true && !rules.some((r) => r.hazard === h && r.kind !== 'silence');
        const speaks = rules.some((r) => r.hazard === h && r.kind !== 'silence' && values[r.point] !== undefined);
        if (!orphan && !speaks) continue;
        s.unwatched?.delete(h);
        s.alarmed.delete(h);
        cleared.push(h);
      }
      if (dirty) changed.add(device);
      return { breaches: breachesNow, raised, cleared };
    },
  };
}
