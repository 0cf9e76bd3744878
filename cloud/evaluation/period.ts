import { CsError } from '../../lib/errors.ts';
import { isDateTime } from '../../lib/schema.ts';
import { CloudErrors } from '../errors.ts';
import type { Period } from './figures.ts';

/** The evaluated period: a calendar month in the city's zone (default: the current one), or `from`..`to`. */

export interface EvaluationPeriod extends Period {
  month: string | null;
  utcOffsetMinutes: number;
}

const DAY = 86_400_000;
/** The longest period one request may ask for (a year and a bit). */
export const MAX_PERIOD_DAYS = 370;

function bad(message: string): never {
  throw new CsError(CloudErrors.BAD_QUERY, message);
}

/** A YYYY-MM-DD date (the city's midnight) or an RFC 3339 instant. */
function instant(v: string, name: string, offsetMs: number): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (m) {
    const [y, mo, d] = m.slice(1).map(Number);
    const t = Date.UTC(y, mo - 1, d);
    const back = new Date(t);
    if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) bad(`${name}: ${v} is not a date`);
    return t - offsetMs;
  }
  if (!isDateTime(v)) bad(`${name}: expected YYYY-MM-DD or an RFC 3339 instant, got ${JSON.stringify(v)}`);
  return Date.parse(v);
}

function monthPeriod(y: number, m: number, offsetMs: number): Period {
  return { from: Date.UTC(y, m - 1, 1) - offsetMs, to: Date.UTC(y, m, 1) - offsetMs };
}

export function periodOf(q: { month?: string; from?: string; to?: string }, now: number, utcOffsetMinutes: number): EvaluationPeriod {
  const off = utcOffsetMinutes * 60_000;
  if (q.from !== undefined || q.to !== undefined) {
    if (q.month !== undefined) bad('give either month or from and to, not both');
    if (q.from === undefined || q.to === undefined) bad('from and to go together');
    const from = instant(q.from, 'from', off);
    const to = instant(q.to, 'to', off);
    if (from >= to) bad(`from ${q.from} is not before to ${q.to}`);
    if (to - from > MAX_PERIOD_DAYS * DAY) bad(`the period is longer than ${MAX_PERIOD_DAYS} days`);
    return { from, to, month: null, utcOffsetMinutes };
  }
  let y: number;
  let m: number;
  if (q.month !== undefined) {
    const mm = /^(\d{4})-(\d{2})$/.exec(q.month);
    if (!mm || Number(mm[2]) < 1 || Number(mm[2]) > 12) bad(`month: expected YYYY-MM, got ${JSON.stringify(q.month)}`);
    [y, m] = [Number(mm[1]), Number(mm[2])];
  } else {
    const local = new Date(now + off);
    [y, m] = [local.getUTCFullYear(), local.getUTCMonth() + 1];
  }
  return { ...monthPeriod(y, m, off), month: `${y}-${String(m).padStart(2, '0')}`, utcOffsetMinutes };
}
