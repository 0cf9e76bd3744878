import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import * as S from '../http/schemas.ts';
import { periodOf } from './period.ts';
import { evaluateQuery, type EvaluationRouteDeps } from './routes.ts';
import { readPublicRanking, writePublicRanking, type PublicRankingSetting } from './settings.ts';

/**
 * The public page of the units' ranking (docs/evaluation.md#public-ranking): off until an admin turns it
 * on; then `GET /api/public/ranking` answers anyone with each unit's rank, score, due, closed and rates
 * for a month (no case ids, no inspectors, no people). Answers are kept a minute per month, so a crowd
 * on the public page costs one evaluation a minute.
 */

const CACHE_MS = 60_000;
/** Months kept (a year and the current one); the oldest kept is dropped first. */
const CACHE_MONTHS = 13;
/** The earliest month the public page answers (anyone may ask; each month asked costs an evaluation). */
const FIRST_MONTH = '2000-01';

const Rate = Type.Union([Type.Number(), Type.Null()]);
export const PublicRanking = Type.Object({
  period: Type.Object({
    month: Type.String({ description: 'YYYY-MM' }),
    from: Type.String({ format: 'date-time' }), to: Type.String({ format: 'date-time', description: 'exclusive' }),
    complete: Type.Boolean({ description: 'false while the month is still running (figures to date)' }),
  }),
  generatedAt: Type.String({ format: 'date-time' }),
  rules: Type.String({ description: 'the scoring rules\' name' }),
  units: Type.Array(Type.Object({
    rank: Type.Union([Type.Integer(), Type.Null()]), unit: Type.String(), name: Type.Union([Type.String(), Type.Null()]),
    score: Type.Union([Type.Number(), Type.Null()]), due: Type.Integer(), closed: Type.Integer(), closedOnTime: Type.Integer(),
    closureRate: Rate, onTimeRate: Rate,
  }), { description: 'in rank order' }),
  chain: Type.Object({ cases: Type.Integer(), digest: Type.String() }, { description: 'the record the figures were computed on (docs/evaluation.md#chain-head)' }),
}, { description: 'The units\' ranking of a month, as published' });
type PublicRanking = Static<typeof PublicRanking>;

const Setting = Type.Object({
  enabled: Type.Boolean(),
  updatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
});
const settingJson = (s: PublicRankingSetting): Static<typeof Setting> => ({
  enabled: s.enabled, updatedAt: s.updatedAt === null ? null : new Date(s.updatedAt).toISOString(), updatedBy: s.updatedBy,
});

const Month = Type.Object({
  month: Type.Optional(Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'a calendar month in the city\'s time zone (default: the current one)' })),
}, { additionalProperties: false });

export function registerPublicRankingRoutes(root: FastifyInstance, deps: EvaluationRouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.database.db;
  const cache = new Map<string, { at: number; body: PublicRanking }>();

  app.get('/api/evaluation/public', {
    config: { roles: ['admin'] },
    schema: { summary: 'Whether the public page of the units\' ranking is on, and who last turned it on or off', tags: ['evaluation'], response: { 200: Setting, ...S.authErrors } },
  }, async () => settingJson(await readPublicRanking(db)));

  app.put('/api/evaluation/public', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Turns the public page of the units\' ranking on or off',
      tags: ['evaluation'], body: Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false }),
      response: { 200: Setting, ...S.authErrors },
    },
  }, async (req) => {
    const actor = principalOf(req).actor;
    const s = await writePublicRanking(db, req.body.enabled, actor, deps.now());
    cache.clear();
    req.log.info({ enabled: s.enabled, actor }, 'public ranking turned %s', s.enabled ? 'on' : 'off');
    return settingJson(s);
  });

  app.get('/api/public/ranking', {
    config: { public: true },
    schema: {
      summary: 'The units\' ranking of a month (no sign-in), when an admin has turned the public page on; 404 otherwise',
      tags: ['evaluation'], security: [], querystring: Month,
      response: { 200: PublicRanking, 400: S.ErrorReply, 404: S.ErrorReply },
    },
  }, async (req) => {
    if (!(await readPublicRanking(db)).enabled) throw new CsError(CloudErrors.RANKING_NOT_PUBLISHED, 'the units\' ranking is not published (an admin turns it on)');
    const now = deps.now();
    const current = periodOf({}, now, deps.utcOffsetMinutes).month ?? '';
    // YYYY-MM strings (the schema's pattern) compare as months do.
    const key = req.query.month ?? current;
    if (key > current) throw new CsError(CloudErrors.BAD_QUERY, `month ${key} has not started yet (the current month is ${current})`);
    if (key < FIRST_MONTH) throw new CsError(CloudErrors.BAD_QUERY, `month ${key} is before ${FIRST_MONTH}, the earliest month published`);
    const hit = cache.get(key);
    if (hit && now - hit.at < CACHE_MS) return hit.body;
    const { report } = await evaluateQuery(deps, { by: 'unit', month: key });
    const body: PublicRanking = {
      period: { month: key, from: report.period.from, to: report.period.to, complete: Date.parse(report.period.to) <= now },
      generatedAt: report.generatedAt, rules: report.rules.name,
      units: report.groups.map((g) => ({
        rank: g.rank, unit: g.key, name: g.name, score: g.score, due: g.figures.due, closed: g.figures.closed,
        closedOnTime: g.figures.closedOnTime, closureRate: g.figures.closureRate, onTimeRate: g.figures.onTimeRate,
      })),
      chain: { cases: report.chain.cases, digest: report.chain.digest },
    };
    cache.delete(key);
    cache.set(key, { at: now, body });
    // Insertion order is age order: drop the oldest beyond the bound.
    for (const k of cache.keys()) if (cache.size > CACHE_MONTHS) cache.delete(k);
    return body;
  });
}
