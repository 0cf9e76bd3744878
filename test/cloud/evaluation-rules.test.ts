import { describe, expect, it } from 'vitest';
import type { CaseFacts } from '../../cloud/evaluation/facts.ts';
import { p90 } from '../../cloud/evaluation/figures.ts';
import { periodOf } from '../../cloud/evaluation/period.ts';
import { evaluate } from '../../cloud/evaluation/report.ts';
import { checkScoringRules, defaultScoringRules, loadScoringRules, scoreOf } from '../../cloud/evaluation/scoring.ts';

/** The evaluation's pure parts (docs/evaluation.md): scoring rules checked and applied, periods cut, the percentile. */

describe('evaluation rules and periods', () => {
  it('scoring rules are checked: a bad file is refused naming the key', () => {
    const good = defaultScoringRules();
    expect(checkScoringRules(structuredClone(good))).toEqual(good);
    expect(() => checkScoringRules({ ...good, items: [{ kind: 'rate', name: 'x', figure: 'reworks', at: 0.7, points: 50, perPointBelow: 1 }] })).toThrow(/items/);
    expect(() => checkScoringRules({ ...good, inspectorPoints: { registered: 1 } })).toThrow(/inspectorPoints/);
    expect(() => loadScoringRules(new URL('file:///nonexistent/scoring.json'))).toThrow(/CS_CLOUD_RULES_INVALID|nonexistent/);
  });

  it('a rate item loses its points per percentage point below, never under min; a per-case item is capped', () => {
    const f = (onTimeRate: number | null, reworks: number) => ({ figures: { due: 4, onTimeRate, reworks }, emergency: { onTimeRate: null }, bySource: {} }) as never;
    const rules = checkScoringRules({
      name: 'test', inspectorPoints: { registered: 1, selfCorrected: 2, verified: 1 },
      items: [
        { kind: 'rate', name: 'on time', figure: 'onTimeRate', at: 0.9, points: 40, perPointBelow: 2, min: 10 },
        { kind: 'rate', name: 'emergency on time', figure: 'onTimeRate', scope: 'emergency', at: 0.9, points: 10, perPointBelow: 1 },
        { kind: 'per-case', name: 'rework', figure: 'reworks', points: -0.5, max: 2 },
      ],
    });
    expect(scoreOf(f(0.9, 1), rules).score).toBe(49.5); // 40 + 10 (no emergency case) − 0.5
    expect(scoreOf(f(0.855, 0), rules).score).toBe(41); // 40 − 2 × 4.5 + 10
    expect(scoreOf(f(0.5, 9), rules).score).toBe(18); // min 10, + 10, rework capped at −2
  });

  it('months are cut in the city\'s zone; from/to take dates or instants', () => {
    expect(periodOf({}, Date.parse('2026-11-30T17:00:00Z'), 480)).toMatchObject({ month: '2026-12', from: Date.parse('2026-11-30T16:00:00Z') });
    expect(periodOf({ month: '2026-02' }, 0, 480)).toMatchObject({ from: Date.parse('2026-01-31T16:00:00Z'), to: Date.parse('2026-02-28T16:00:00Z') });
    expect(periodOf({ from: '2026-11-01', to: '2026-11-08T00:00:00+08:00' }, 0, 480)).toEqual({
      from: Date.parse('2026-10-31T16:00:00Z'), to: Date.parse('2026-11-07T16:00:00Z'), month: null, utcOffsetMinutes: 480,
    });
    expect(() => periodOf({ from: '2025-01-01', to: '2026-06-01' }, 0, 480)).toThrow(/370 days/);
  });

  it('the 90th percentile is the nearest rank', () => {
    expect(p90([5])).toBe(5);
    expect(p90([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(9);
    expect(p90([10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11])).toBe(10);
    expect(p90([])).toBeNull();
  });

  // Guards against judging a running month by its end: on 15 Nov a case due 25 Nov was counted due and overdue.
  it('a month still running counts up to now: an open case due later this month is neither due nor overdue', () => {
    const t = (d: string) => Date.parse(`2026-11-${d}T02:00:00Z`);
    const fact = (id: string, deadline: number): CaseFacts => ({
      id, registeredAt: t('02'), unit: 'u1', district: null, source: 'hotline', reporter: null, selfCorrected: false,
      emergencyEpoch: null, state: 'dispatched', deadline, closedAt: null, voidedAt: null, deferred: false,
      firstDispatchAt: t('02'), reworks: 0, extensions: 0, checks: [], head: null, currentHead: null, fallback: [],
    });
    const period = periodOf({ month: '2026-11' }, 0, 480);
    const report = evaluate({ facts: [fact('late', t('10')), fact('later', t('25'))], period, by: 'unit', rules: defaultScoringRules(), now: t('15') });
    expect(report.totals.figures.cases.due).toEqual(['late']);
    expect(report.totals.figures.cases.overdue).toEqual(['late']);
    expect(report.period.to).toBe('2026-11-30T16:00:00.000Z');
    // The month over, both are due and overdue.
    const after = evaluate({ facts: [fact('late', t('10')), fact('later', t('25'))], period, by: 'unit', rules: defaultScoringRules(), now: Date.parse('2026-12-02T00:00:00Z') });
    expect(after.totals.figures.cases.overdue).toEqual(['late', 'later']);
  });
});
