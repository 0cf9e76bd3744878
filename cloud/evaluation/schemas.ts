import { Type, type Static } from '@sinclair/typebox';

/**
 * The evaluation report's shape (docs/evaluation.md): the single source of its types, of the API's
 * response schema and of the export columns.
 */

export const SOURCES = ['sensor', 'inspector', 'hotline', 'citizen'] as const;
export type Source = (typeof SOURCES)[number];
export const GROUPINGS = ['unit', 'district', 'inspector'] as const;
export type Grouping = (typeof GROUPINGS)[number];

const Rate = Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description: 'a fraction 0..1 rounded to 4 places; null when its base is 0' });
const Hours = Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: 'hours rounded to 2 places; null with no closed case' });
const Ids = (description: string) => Type.Array(Type.String(), { description });

/** The counted figures of one set of cases (a group, or its emergency or source part). */
export const Figures = Type.Object({
  due: Type.Integer({ description: 'cases due in the period (docs/evaluation.md#due)' }),
  closed: Type.Integer({ description: 'due cases closed by the period end' }),
  closedOnTime: Type.Integer({ description: 'closed at or before the deadline; deferred cases are never counted here' }),
  closedLate: Type.Integer(),
  deferred: Type.Integer({ description: 'due cases deferred (缓办) at any time before the period end' }),
  open: Type.Integer({ description: 'due cases not closed at the period end' }),
  overdue: Type.Integer({ description: 'open at the period end, past the deadline, not deferred' }),
  onTimeBase: Type.Integer({ description: 'due − deferred' }),
  closureRate: Rate,
  onTimeRate: Rate,
  reworked: Type.Integer({ description: 'due cases sent back at least once' }),
  reworks: Type.Integer({ description: 'rework events of the due cases' }),
  reworkRate: Rate,
  extended: Type.Integer({ description: 'due cases extended at least once' }),
  extensionRate: Rate,
  handlingMeanHours: Hours,
  handlingP90Hours: Hours,
  cases: Type.Object({
    due: Ids('every due case'), closed: Ids(''), closedOnTime: Ids(''), closedLate: Ids(''), deferred: Ids(''),
    open: Ids(''), overdue: Ids(''), reworked: Ids(''), extended: Ids(''),
  }, { description: 'the case ids behind each count' }),
});
export type Figures = Static<typeof Figures>;

const Counted = Type.Object({ count: Type.Integer(), cases: Type.Array(Type.String()) });

export const Points = Type.Object({
  registered: Counted, selfCorrected: Counted,
  verified: Type.Object({ count: Type.Integer(), cases: Type.Array(Type.String(), { description: 'one entry per verification (a case may repeat)' }) }),
  points: Type.Number(),
}, { description: 'an inspector\'s 一案一积分 points for the period' });
export type Points = Static<typeof Points>;

export const ScoreItem = Type.Object({ item: Type.String(), value: Type.Union([Type.Number(), Type.Null()]), points: Type.Number() });

export const Group = Type.Object({
  key: Type.String({ description: 'unit id, district (county) code, or the inspector\'s actor; "all" for the totals' }),
  name: Type.Union([Type.String(), Type.Null()]),
  rank: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: 'by score (unit, district) or points (inspector); equal values share a rank; null for the totals and for groups with nothing to rank' }),
  score: Type.Union([Type.Number(), Type.Null()], { description: 'the scoring rules\' total; null with no case due' }),
  scoreItems: Type.Array(ScoreItem),
  figures: Figures,
  emergency: Figures,
  bySource: Type.Object(Object.fromEntries(SOURCES.map((s) => [s, Figures])) as Record<Source, typeof Figures>),
  selfCorrected: Counted,
  voided: Counted,
  points: Type.Union([Points, Type.Null()], { description: 'by=inspector only' }),
});
export type Group = Static<typeof Group>;

export const Report = Type.Object({
  period: Type.Object({
    from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time', description: 'exclusive' }),
    month: Type.Union([Type.String(), Type.Null()], { description: 'YYYY-MM when the period is one calendar month' }),
    utcOffsetMinutes: Type.Integer({ description: 'the city\'s offset the month is cut in' }),
  }),
  by: Type.Union(GROUPINGS.map((g) => Type.Literal(g))),
  generatedAt: Type.String({ format: 'date-time' }),
  rules: Type.Object({ name: Type.String(), rankedBy: Type.Union([Type.Literal('score'), Type.Literal('points')]) }),
  totals: Group,
  groups: Type.Array(Group, { description: 'in rank order' }),
  chain: Type.Object({
    cases: Type.Integer({ description: 'cases counted anywhere in the report' }),
    caseIds: Type.Array(Type.String(), { description: 'those cases, sorted' }),
    digest: Type.String({ description: 'sha256 hex over "id:head\\n" lines in id order, head: the hash of each counted case\'s last history row before `to` (its chain head at the period end)' }),
    currentDigest: Type.String({ description: 'the same over their cases.history_head now (GET /api/audit/verify\'s auditHeads formula)' }),
    emergencyLog: Type.Union([Type.String(), Type.Null()], { description: 'the emergency log\'s head when the report was made' }),
    credentialLog: Type.Union([Type.String(), Type.Null()], { description: 'the credential log\'s head when the report was made' }),
  }),
  fallback: Type.Object({
    cases: Type.Array(Type.String()),
  }, { description: 'counted cases with a fact taken from the case row because their history predates it being recorded there' }),
});
export type Report = Static<typeof Report>;

export const EvaluationQuery = Type.Object({
  by: Type.Optional(Type.Union(GROUPINGS.map((g) => Type.Literal(g)), { default: 'unit' })),
  month: Type.Optional(Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'a calendar month in the city\'s time zone (default: the current one)' })),
  from: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}', maxLength: 40, description: 'YYYY-MM-DD (the city\'s midnight) or an RFC 3339 instant; with `to`, instead of `month`' })),
  to: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}', maxLength: 40, description: 'exclusive; same forms as `from`' })),
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('xlsx')], { default: 'json' })),
}, { additionalProperties: false });
export type EvaluationQuery = Static<typeof EvaluationQuery>;

