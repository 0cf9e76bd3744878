import type { Threshold } from '../devices/profile.ts';
import { classRank, severityRank, type CaseClass, type Severity } from './categories.ts';

/**
 * Threshold rules, pure: a reading's values against a profile's thresholds. The spine version has
 * no hysteresis or hold time (those come with rules as data); a breach is a value past its limit.
 */

export type PointValue = number | boolean | string;

export interface Breach {
  hazard: string;
  severity: Severity;
  class: CaseClass;
  thresholdId: string;
  point: string;
  value: PointValue;
  limit: number | boolean;
  op: Threshold['op'];
}

/** Does one value breach one threshold? Numbers compare with `>`/`<`; `==` compares exactly (flags). */
export function breaches(t: Pick<Threshold, 'op' | 'value'>, value: PointValue | undefined): boolean {
  if (value === undefined) return false;
  switch (t.op) {
    case '>': return typeof value === 'number' && typeof t.value === 'number' && value > t.value;
    case '<': return typeof value === 'number' && typeof t.value === 'number' && value < t.value;
    case '==': return value === t.value || (typeof t.value === 'boolean' && typeof value === 'number' && (value !== 0) === t.value);
  }
}

/**
 * Evaluates values against thresholds: at most one breach per hazard, the most severe one
 * (on a tie, the more urgent class, then the first threshold in profile order).
 */
export function evaluate(values: Record<string, PointValue>, thresholds: readonly Threshold[]): Breach[] {
  const worst = new Map<string, Breach>();
  for (const t of thresholds) {
    const value = values[t.point];
    if (!breaches(t, value)) continue;
    const b: Breach = {
      hazard: t.hazard, severity: t.severity as Severity, class: t.class as CaseClass,
      thresholdId: t.id, point: t.point, value: value!, limit: t.value, op: t.op,
    };
    const prev = worst.get(t.hazard);
    if (!prev || isWorse(b, prev)) worst.set(t.hazard, b);
  }
  return [...worst.values()];
}

function isWorse(a: Breach, b: Breach): boolean {
  const s = severityRank(a.severity) - severityRank(b.severity);
  if (s !== 0) return s > 0;
  return classRank(a.class) > classRank(b.class);
}

/** One line a person reads: `level_m 0.92 > 0.85 (level-tier2)`. */
export function describeBreach(b: Breach): string {
  return `${b.point} ${JSON.stringify(b.value)} ${b.op} ${JSON.stringify(b.limit)} (${b.thresholdId})`;
}
