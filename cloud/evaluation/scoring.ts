import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { CsError } from '../../lib/errors.ts';
import { check } from '../../lib/schema.ts';
import { CloudErrors } from '../errors.ts';
import { SOURCES, type Figures, type Group } from './schemas.ts';

/**
 * Scoring rules as data (docs/evaluation.md#scoring): items over a group's figures summed into its
 * score, and the inspectors' points per case (一案一积分). cloud/data/scoring-jinhua.json is the example.
 */

const RATES = ['closureRate', 'onTimeRate', 'reworkRate', 'extensionRate'] as const;
const COUNTS = ['due', 'closed', 'closedOnTime', 'closedLate', 'deferred', 'open', 'overdue', 'reworked', 'reworks', 'extended'] as const;
const Scope = Type.Union(['all', 'emergency', ...SOURCES].map((s) => Type.Literal(s)), {
  default: 'all', description: 'which figures: all cases, the emergency-period ones, or one source',
});

const RateItem = Type.Object({
  kind: Type.Literal('rate'),
  name: Type.String({ minLength: 1 }),
  figure: Type.Union(RATES.map((r) => Type.Literal(r))),
  scope: Type.Optional(Scope),
  /** At or above this fraction the item earns all its points. */
  at: Type.Number({ minimum: 0, maximum: 1 }),
  points: Type.Number(),
  /** Points lost per percentage point below `at`. */
  perPointBelow: Type.Number({ minimum: 0 }),
  /** The item never earns less. */
  min: Type.Optional(Type.Number({ default: 0 })),
}, { additionalProperties: false });

const CountItem = Type.Object({
  kind: Type.Literal('per-case'),
  name: Type.String({ minLength: 1 }),
  figure: Type.Union(COUNTS.map((c) => Type.Literal(c))),
  scope: Type.Optional(Scope),
  /** Points per counted case (negative: a deduction). */
  points: Type.Number(),
  /** Caps the item's total in absolute value. */
  max: Type.Optional(Type.Number({ minimum: 0 })),
}, { additionalProperties: false });

export const ScoringRules = Type.Object({
  name: Type.String({ minLength: 1 }),
  items: Type.Array(Type.Union([RateItem, CountItem]), { minItems: 1 }),
  /** 一案一积分: points per case an inspector registered, self-corrected (instead of registered), or verified. */
  inspectorPoints: Type.Object({
    registered: Type.Number(), selfCorrected: Type.Number(), verified: Type.Number(),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
export type ScoringRules = Static<typeof ScoringRules>;

export const DEFAULT_SCORING_FILE = new URL('../data/scoring-jinhua.json', import.meta.url);

/** Checks scoring rules (an object, or a JSON file's text already parsed). */
export function checkScoringRules(value: unknown, where = 'scoring rules'): ScoringRules {
  const r = check(ScoringRules, value);
  if (!r.ok) throw new CsError(CloudErrors.RULES_INVALID, `${where} invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  return r.value;
}

export function loadScoringRules(file: string | URL = DEFAULT_SCORING_FILE): ScoringRules {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CsError(CloudErrors.RULES_INVALID, `scoring rules ${String(file)}: ${(err as Error).message}`);
  }
  return checkScoringRules(value, `scoring rules ${String(file)}`);
}

let defaults: ScoringRules | undefined;
/** Jinhua's example (cloud/data/scoring-jinhua.json), read once. */
export const defaultScoringRules = (): ScoringRules => (defaults ??= loadScoringRules());

const round2 = (n: number): number => Math.round(n * 100) / 100;

function scoped(g: Pick<Group, 'figures' | 'emergency' | 'bySource'>, scope: string | undefined): Figures {
  if (!scope || scope === 'all') return g.figures;
  if (scope === 'emergency') return g.emergency;
  return g.bySource[scope as keyof Group['bySource']];
}

/**
 * A group's score: null with no case due; else the sum of its items. A rate item earns its points at or
 * above `at`, less `perPointBelow` per percentage point below (never under `min`); a rate with no base
 * (no such case) earns its points. A per-case item counts its figure times its points, capped at `max`.
 */
export function scoreOf(g: Pick<Group, 'figures' | 'emergency' | 'bySource'>, rules: ScoringRules): { score: number | null; items: Group['scoreItems'] } {
  if (g.figures.due === 0) return { score: null, items: [] };
  const items = rules.items.map((it) => {
    const f = scoped(g, it.scope);
    if (it.kind === 'rate') {
      const v = f[it.figure];
      if (v === null) return { item: it.name, value: null, points: it.points };
      const below = Math.max(0, round2(it.at * 100 - v * 100));
      return { item: it.name, value: v, points: round2(Math.max(it.min ?? 0, it.points - below * it.perPointBelow)) };
    }
    const n = f[it.figure];
    const raw = n * it.points;
    const capped = it.max === undefined ? raw : Math.sign(raw) * Math.min(Math.abs(raw), it.max);
    return { item: it.name, value: n, points: round2(capped) };
  });
  return { score: round2(items.reduce((s, i) => s + i.points, 0)), items };
}
