import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { auditHeads } from '../audit/verify.ts';
import type { Database } from '../db/database.ts';
import * as S from '../http/schemas.ts';
import { toCsv, toXlsx } from './export.ts';
import { loadFacts } from './load.ts';
import { periodOf, type EvaluationPeriod } from './period.ts';
import { registerPublicRankingRoutes } from './public-routes.ts';
import { evaluate } from './report.ts';
import { EvaluationQuery, Report } from './schemas.ts';
import type { ScoringRules } from './scoring.ts';

/** `GET /api/evaluation` (docs/evaluation.md, README "Evaluation"): the report as JSON, CSV or XLSX. */

export interface EvaluationRouteDeps {
  database: Database;
  now: () => number;
  utcOffsetMinutes: number;
  rules: ScoringRules;
  /** Every unit of the registry, listed in by=unit reports even with no case; read at each query (units are added at runtime). */
  readonly units: readonly { id: string; name: string }[];
}

export const EVALUATION_ROLES = ['operator', 'commander', 'verifier', 'admin'] as const;

/** The report a query asks for (by unit unless it says otherwise), as of now. */
export async function evaluateQuery(deps: EvaluationRouteDeps, query: EvaluationQuery): Promise<{ period: EvaluationPeriod; report: Report }> {
  const now = deps.now();
  const period = periodOf(query, now, deps.utcOffsetMinutes);
  const by = query.by ?? 'unit';
  const units = deps.units;
  const names = new Map(units.map((u) => [u.id, u.name]));
  const facts = await loadFacts(deps.database.db, period);
  const report = evaluate({
    facts, period, by, rules: deps.rules, now,
    names, keys: by === 'unit' ? units.map((u) => u.id) : [],
  });
  // The current heads read by the audit's own function (cloud/audit/verify.ts), and the logs' heads.
  const heads = await auditHeads(deps.database.db, report.chain.caseIds);
  Object.assign(report.chain, { currentDigest: heads.caseHistory.digest, emergencyLog: heads.emergencyLog, credentialLog: heads.credentialLog });
  return { period, report };
}

export function registerEvaluationRoutes(root: FastifyInstance, deps: EvaluationRouteDeps): void {
  registerPublicRankingRoutes(root, deps);
  root.withTypeProvider<TypeBoxTypeProvider>().get('/api/evaluation', {
    config: { roles: [...EVALUATION_ROLES] },
    schema: {
      summary: 'The evaluation (综合评价) of a period per unit, district or inspector: counts, rates, handling times, score, rank, and the cases and chain heads behind them; format=csv|xlsx for a file',
      tags: ['evaluation'], querystring: EvaluationQuery,
      response: { 200: Report, ...S.authErrors },
    },
  }, async (req, reply) => {
    const { period, report } = await evaluateQuery(deps, req.query);
    const by = report.by;
    const format = req.query.format ?? 'json';
    if (format === 'json') return report;
    const name = `evaluation-${period.month ?? `${report.period.from.slice(0, 10)}_${report.period.to.slice(0, 10)}`}-by-${by}`;
    // A file, not the JSON the response schema describes.
    const file = reply as unknown as FastifyReply;
    void file.header('cache-control', 'private, no-cache');
    if (format === 'csv') {
      return file.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(toCsv(report));
    }
    return file.type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
      .header('content-disposition', `attachment; filename="${name}.xlsx"`).send(await toXlsx(report));
  });
}
