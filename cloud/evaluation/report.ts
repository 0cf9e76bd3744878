import { createHash } from 'node:crypto';
import type { CaseFacts } from './facts.ts';
import { figuresOf, isDue, type Period } from './figures.ts';
import { scoreOf, type ScoringRules } from './scoring.ts';
import { SOURCES, type Group, type Grouping, type Points, type Report, type Source } from './schemas.ts';

/**
 * The evaluation engine (docs/evaluation.md): pure over case facts (cloud/evaluation/facts.ts), it
 * groups, counts, scores, ranks, and names the cases and chain heads behind every figure.
 */

export interface EvaluateInput {
  facts: readonly CaseFacts[];
  period: Period & { month: string | null; utcOffsetMinutes: number };
  by: Grouping;
  rules: ScoringRules;
  /** Display names by key (units). */
  names?: ReadonlyMap<string, string>;
  /** Keys always listed, even with no case (every configured unit). */
  keys?: readonly string[];
  now: number;
}

const within = (t: number | null, p: Period): t is number => t !== null && t >= p.from && t < p.to;
const iso = (t: number): string => new Date(t).toISOString();
const sortedIds = (fs: readonly CaseFacts[]): string[] => fs.map((f) => f.id).sort();

function keyOf(f: CaseFacts, by: Grouping): string | null {
  if (by === 'unit') return f.unit;
  if (by === 'district') return f.district ?? 'unknown';
  return f.reporter;
}

function groupOf(key: string, name: string | null, cases: readonly CaseFacts[], p: Period, rules: ScoringRules): Group {
  const due = cases.filter((f) => isDue(f, p));
  const figures = figuresOf(due, p);
  const emergency = figuresOf(due.filter((f) => f.emergencyEpoch !== null), p);
  const bySource = Object.fromEntries(SOURCES.map((s) => [s, figuresOf(due.filter((f) => f.source === s), p)])) as Record<Source, Group['figures']>;
  const self = cases.filter((f) => f.selfCorrected && f.voidedAt === null && within(f.registeredAt, p));
  const voided = cases.filter((f) => within(f.voidedAt, p));
  const { score, items } = scoreOf({ figures, emergency, bySource }, rules);
  return {
    key, name, rank: null, score, scoreItems: items, figures, emergency, bySource,
    selfCorrected: { count: self.length, cases: sortedIds(self) },
    voided: { count: voided.length, cases: sortedIds(voided) },
    points: null,
  };
}

/** An inspector's points: cases registered (not voided) and self-corrected in the period, and verifications made in it. */
function pointsOf(reported: readonly CaseFacts[], verified: string[], p: Period, rules: ScoringRules): Points {
  const mine = reported.filter((f) => f.voidedAt === null && within(f.registeredAt, p));
  const registered = mine.filter((f) => !f.selfCorrected);
  const self = mine.filter((f) => f.selfCorrected);
  const w = rules.inspectorPoints;
  const points = Math.round((registered.length * w.registered + self.length * w.selfCorrected + verified.length * w.verified) * 100) / 100;
  return {
    registered: { count: registered.length, cases: sortedIds(registered) },
    selfCorrected: { count: self.length, cases: sortedIds(self) },
    verified: { count: verified.length, cases: [...verified].sort() },
    points,
  };
}

/** Ranks in place by `value` (higher first, null last); equal values share a rank; returns the order. */
function rank(groups: Group[], value: (g: Group) => number | null): Group[] {
  const sorted = [...groups].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va !== vb) return va === null ? 1 : vb === null ? -1 : vb - va;
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  });
  let prev: number | null | undefined;
  let prevRank = 0;
  sorted.forEach((g, i) => {
    const v = value(g);
    if (v === null) return;
    g.rank = v === prev ? prevRank : i + 1;
    prev = v;
    prevRank = g.rank;
  });
  return sorted;
}

/** sha256 over "id:head" lines in id order: cloud/audit/verify.ts auditHeads' formula, so the two compare. */
function digest(facts: readonly CaseFacts[], head: (f: CaseFacts) => string | null): string {
  const h = createHash('sha256');
  for (const f of [...facts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) h.update(`${f.id}:${head(f) ?? ''}\n`);
  return h.digest('hex');
}

export function evaluate(input: EvaluateInput): Report {
  const { facts, by, rules } = input;
  // A month still running counts up to now: nothing after now can be due, overdue or done yet.
  const p: Period = { from: input.period.from, to: Math.min(input.period.to, input.now) };
  const buckets = new Map<string, CaseFacts[]>((input.keys ?? []).map((k) => [k, []]));
  for (const f of facts) {
    const k = keyOf(f, by);
    if (k === null) continue;
    const list = buckets.get(k);
    if (list) list.push(f);
    else buckets.set(k, [f]);
  }
  // Verifications in the period by actor (case ids, one per verification).
  const checks = new Map<string, string[]>();
  if (by === 'inspector') {
    for (const f of facts) {
      for (const c of f.checks) {
        if (!within(c.at, p)) continue;
        if (!buckets.has(c.actor)) buckets.set(c.actor, []);
        const list = checks.get(c.actor);
        if (list) list.push(f.id);
        else checks.set(c.actor, [f.id]);
      }
    }
  }
  const groups = [...buckets].map(([k, cases]) => {
    const g = groupOf(k, input.names?.get(k) ?? null, cases, p, rules);
    if (by === 'inspector') g.points = pointsOf(cases, checks.get(k) ?? [], p, rules);
    return g;
  });
  const ranked = by === 'inspector' ? rank(groups, (g) => g.points?.points ?? null) : rank(groups, (g) => g.score);
  const totals = groupOf('all', null, facts, p, rules);
  const counted = new Set([...totals.figures.cases.due, ...totals.selfCorrected.cases, ...totals.voided.cases]);
  for (const g of groups) for (const id of [...(g.points?.registered.cases ?? []), ...(g.points?.verified.cases ?? [])]) counted.add(id);
  const countedFacts = facts.filter((f) => counted.has(f.id));
  return {
    period: { from: iso(p.from), to: iso(input.period.to), month: input.period.month, utcOffsetMinutes: input.period.utcOffsetMinutes },
    by,
    generatedAt: iso(input.now),
    rules: { name: rules.name, rankedBy: by === 'inspector' ? 'points' : 'score' },
    totals,
    groups: ranked,
    chain: {
      cases: countedFacts.length, caseIds: countedFacts.map((f) => f.id).sort(),
      digest: digest(countedFacts, (f) => f.head), currentDigest: digest(countedFacts, (f) => f.currentHead), emergencyLog: null, credentialLog: null,
    },
    fallback: { cases: countedFacts.filter((f) => f.fallback.length).map((f) => f.id).sort() },
  };
}
