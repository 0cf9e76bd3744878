import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { verifyHistoryChains } from '../cases/verify-chain.ts';
import type { Database } from '../db/database.ts';
import * as S from './schemas.ts';

const ChainFault = Type.Object({
  caseId: Type.String(),
  seq: Type.Union([Type.Integer(), Type.Null()], { description: 'the first row that breaks the chain (null: no row to name)' }),
  kind: Type.Union(['altered', 'broken-link', 'deleted-tail', 'orphan'].map((k) => Type.Literal(k)), {
    description: 'altered: content changed; broken-link: a row before it deleted, or it inserted out of place; deleted-tail: rows after it deleted; orphan: rows of no case',
  }),
  message: Type.String(),
});
const ChainReport = Type.Object({
  ok: Type.Boolean(), cases: Type.Integer(), rows: Type.Integer(), faults: Type.Array(ChainFault),
}, { description: 'Every case history chain recomputed; per broken case its first fault' });

/** `GET /api/audit/verify` (admin): the case-history chains recomputed (docs/architecture.md#case-history-chain). */
export function registerAuditRoutes(root: FastifyInstance, deps: { database: Database }): void {
  root.withTypeProvider<TypeBoxTypeProvider>().get('/api/audit/verify', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Recompute every case history chain and name, per case, the first row altered, deleted or inserted out of place (admin)',
      tags: ['audit'], response: { 200: ChainReport, ...S.authErrors },
    },
  }, async () => verifyHistoryChains(deps.database.db));
}
