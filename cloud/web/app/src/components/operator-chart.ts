import type { CityMode, Severity } from '../../../../../lib/vocabulary.ts';

/**
 * The history chart's arithmetic, apart from Vue and ECharts (tested in test/web/operator-chart.test.ts):
 * which threshold lines to draw and how, fine buckets spliced into coarse ones, the zoom window.
 */

export interface Bucket { t: number; min: number; max: number; mean: number; count: number }
export interface ChartLine { value: number; severity: Severity; label: string; inForce: boolean }
export interface Threshold { id: string; hazard: string; point: string; op: string; value: number | boolean; severity: Severity }
export interface Thresholds { inForce: CityMode; normal: Threshold[]; emergency: Threshold[] }
export type LineVariant = CityMode | 'both';

/**
 * A point's threshold lines (GET /api/devices/:id/thresholds): each rule at its normal limit and, where
 * it differs, at its emergency one; the variant the city's mode puts in force is marked. A rule whose
 * limits are equal (or without an emergency one) is one line, in force in either mode. Flags are not lines.
 */
export function thresholdLines(th: Thresholds | null, point: string, label: (l: Threshold, variant: LineVariant) => string): ChartLine[] {
  if (!th) return [];
  const out: ChartLine[] = [];
  const line = (l: Threshold, variant: LineVariant, inForce: boolean) => ({ value: l.value as number, severity: l.severity, inForce, label: label(l, variant) });
  for (const n of th.normal) {
    if (n.point !== point || typeof n.value !== 'number') continue;
    const e = th.emergency.find((x) => x.id === n.id);
    if (!e || e.value === n.value || typeof e.value !== 'number') { out.push(line(n, 'both', true)); continue; }
    out.push(line(n, 'normal', th.inForce === 'normal'), line(e, 'emergency', th.inForce === 'emergency'));
  }
  return out;
}

/** The coarse buckets outside a zoomed window and the fine ones inside it, oldest first. */
export function spliceBuckets(coarse: Bucket[], fine: Bucket[] | null, window: [number, number] | null): Bucket[] {
  if (!fine || !window) return coarse;
  const [a, b] = window;
  return [...coarse.filter((x) => x.t < a), ...fine.filter((x) => x.t >= a && x.t < b), ...coarse.filter((x) => x.t >= b)].sort((x, y) => x.t - y.t);
}

/** The time window a zoom shows (percentages of [from, to]); null when it shows the whole range. */
export function zoomWindow(from: number, to: number, start: number, end: number): [number, number] | null {
  if (start <= 0.01 && end >= 99.99) return null;
  const span = to - from;
  return [Math.floor(from + (span * start) / 100), Math.ceil(from + (span * end) / 100)];
}

/** A value axis holding every value and line, rounded to half a decade of the spread. */
export function valueAxis(values: number[]): { min: number; max: number } {
  if (!values.length) return { min: 0, max: 1 };
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const spread = hi - lo || Math.abs(hi) || 1;
  const nice = 10 ** Math.floor(Math.log10(spread)) / 2;
  return {
    min: Number((Math.floor((lo - spread * 0.05) / nice) * nice).toPrecision(6)),
    max: Number((Math.ceil((hi + spread * 0.05) / nice) * nice).toPrecision(6)),
  };
}
