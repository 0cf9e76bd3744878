import type { CaseFacts } from './facts.ts';
import type { Figures } from './schemas.ts';

/** The counted figures of a set of cases for one period (docs/evaluation.md#figures). */

export interface Period {
  from: number;
  /** Exclusive. */
  to: number;
}

const HOUR = 3_600_000;

/**
 * Due in the period: not voided, not self-corrected, and the earlier of its closing and its deadline
 * falls in the period (a case closed early counts when it closed; an open or late one when it fell due).
 */
export function isDue(f: CaseFacts, p: Period): boolean {
  if (f.voidedAt !== null || f.selfCorrected) return false;
  const t = Math.min(f.closedAt ?? Infinity, f.deadline);
  return t >= p.from && t < p.to;
}

/** Closed on time: closed at or before the deadline in force then, and never deferred. */
export const onTime = (f: CaseFacts): boolean => f.closedAt !== null && !f.deferred && f.closedAt <= f.deadline;

/** Handling time: from the first dispatch (registration when never dispatched) to closing, in hours. */
export const handlingHours = (f: CaseFacts): number | null =>
  f.closedAt === null ? null : (f.closedAt - (f.firstDispatchAt ?? f.registeredAt)) / HOUR;

export const rate = (n: number, base: number): number | null => (base === 0 ? null : Math.round((n / base) * 10_000) / 10_000);
const hours = (h: number | null): number | null => (h === null ? null : Math.round(h * 100) / 100);

/** The 90th percentile by nearest rank: the value at rank ⌈0.9·n⌉ of the sorted values. */
export function p90(values: readonly number[]): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(0.9 * sorted.length) - 1];
}

/** The figures of cases already known to be due in `p`. */
export function figuresOf(due: readonly CaseFacts[], p: Period): Figures {
  const ids = (pred: (f: CaseFacts) => boolean) => due.filter(pred).map((f) => f.id).sort();
  const closed = ids((f) => f.closedAt !== null);
  const closedOnTime = ids(onTime);
  const closedLate = ids((f) => f.closedAt !== null && !f.deferred && !onTime(f));
  const deferred = ids((f) => f.deferred);
  const open = ids((f) => f.closedAt === null);
  const overdue = ids((f) => f.closedAt === null && !f.deferred && f.deadline < p.to);
  const reworked = ids((f) => f.reworks > 0);
  const extended = ids((f) => f.extensions > 0);
  const times = due.map(handlingHours).filter((h): h is number => h !== null);
  const n = due.length;
  return {
    due: n,
    closed: closed.length,
    closedOnTime: closedOnTime.length,
    closedLate: closedLate.length,
    deferred: deferred.length,
    open: open.length,
    overdue: overdue.length,
    onTimeBase: n - deferred.length,
    closureRate: rate(closed.length, n),
    onTimeRate: rate(closedOnTime.length, n - deferred.length),
    reworked: reworked.length,
    reworks: due.reduce((s, f) => s + f.reworks, 0),
    reworkRate: rate(reworked.length, n),
    extended: extended.length,
    extensionRate: rate(extended.length, n),
    handlingMeanHours: hours(times.length ? times.reduce((s, h) => s + h, 0) / times.length : null),
    handlingP90Hours: hours(p90(times)),
    cases: { due: ids(() => true), closed, closedOnTime, closedLate, deferred, open, overdue, reworked, extended },
  };
}
