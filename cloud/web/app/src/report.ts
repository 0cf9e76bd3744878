/**
 * The monthly report's arithmetic on the evaluation's JSON (GET /api/evaluation, docs/evaluation.md):
 * the months to fetch and the last twelve months folded into one baseline per unit. Rates are
 * recomputed from the summed counts (not averaged), as the evaluation computes them.
 */

export interface Figures {
  due: number; closed: number; closedOnTime: number; closedLate: number; deferred: number; open: number; overdue: number;
  onTimeBase: number; closureRate: number | null; onTimeRate: number | null; reworks: number; reworkRate: number | null;
  extended: number; extensionRate: number | null; handlingMeanHours: number | null; handlingP90Hours: number | null;
  cases: { due: string[]; overdue: string[] };
}
export interface Group { key: string; name: string | null; rank: number | null; score: number | null; figures: Figures }
export interface EvaluationReport {
  period: { from: string; to: string; month: string | null };
  generatedAt: string;
  rules: { name: string };
  totals: Group;
  groups: Group[];
  chain: { cases: number; digest: string; currentDigest: string };
}

/** `YYYY-MM` of the month `back` months before `month`. */
export function monthBefore(month: string, back: number): string {
  const [y, m] = month.split('-').map(Number);
  const i = y * 12 + (m - 1) - back;
  return `${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
}

/** The month and the twelve before it, oldest first. */
export function thirteenMonths(month: string): string[] {
  return Array.from({ length: 13 }, (_, k) => monthBefore(month, 12 - k));
}

/** The current month in the city's zone. */
export function currentMonth(now: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit' }).formatToParts(now);
  return `${parts.find((p) => p.type === 'year')!.value}-${parts.find((p) => p.type === 'month')!.value}`;
}

const ratio = (n: number, d: number): number | null => (d > 0 ? Math.round((n / d) * 10_000) / 10_000 : null);

/** A unit's twelve months before this one, summed: its on-time and closure rates over the year. */
export function baseline(reports: readonly EvaluationReport[], key: string): { due: number; onTimeRate: number | null; closureRate: number | null } {
  let due = 0; let closed = 0; let onTime = 0; let base = 0;
  for (const r of reports) {
    const g = key === 'all' ? r.totals : r.groups.find((x) => x.key === key);
    if (!g) continue;
    due += g.figures.due; closed += g.figures.closed; onTime += g.figures.closedOnTime; base += g.figures.onTimeBase;
  }
  return { due, onTimeRate: ratio(onTime, base), closureRate: ratio(closed, due) };
}

/** A rate as a percentage with one decimal, or a dash when it has no base. */
export const percent = (r: number | null): string => (r === null ? '—' : `${(r * 100).toFixed(1)}%`);
