import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CredentialActionT, CredentialSubjectT } from '../../lib/vocabulary.ts';
import { listCredentialLog } from '../audit/credential-log.ts';
import { verifyAudit } from '../audit/verify.ts';
import type { Database } from '../db/database.ts';
import * as S from './schemas.ts';

const Kind = Type.Union(['altered', 'broken-link', 'deleted-tail', 'orphan'].map((k) => Type.Literal(k)), {
  description: 'altered: content changed; broken-link: a row before it deleted, or it inserted out of place; deleted-tail: rows after it deleted; orphan: rows of no case',
});
const Seq = Type.Union([Type.Integer(), Type.Null()], { description: 'the first row that breaks the chain (null: no row to name)' });
const ChainFault = Type.Object({ caseId: Type.String(), seq: Seq, kind: Kind, message: Type.String() });
const LogReport = Type.Object({
  ok: Type.Boolean(), rows: Type.Integer(), head: Type.Union([Type.String(), Type.Null()], { description: 'the hash of the log\'s last row as recorded' }),
  fault: Type.Union([Type.Object({ seq: Seq, kind: Kind, message: Type.String() }), Type.Null()], { description: 'the first row that breaks the chain' }),
});
const AuditReport = Type.Object({
  ok: Type.Boolean({ description: 'every chain holds' }), cases: Type.Integer(), rows: Type.Integer({ description: 'case-history rows' }),
  faults: Type.Array(ChainFault, { description: 'per broken case its first fault' }),
  emergencyLog: LogReport, credentialLog: LogReport, configLog: LogReport, registryLog: LogReport,
}, { description: 'Every case history chain, the emergency log, the credential log, the configuration log and the registry log recomputed' });

const CredentialLogPage = Type.Object({
  items: Type.Array(Type.Object({
    seq: Type.Integer(), at: Type.String({ format: 'date-time' }), subjectKind: CredentialSubjectT, subject: Type.String({ description: 'a user\'s name, a token\'s or an Open311 key\'s id' }),
    action: CredentialActionT, actor: Type.String(), details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'role, unit (never a secret or its hash)' }),
    hash: Type.Union([Type.String(), Type.Null()]),
  })),
  nextBefore: Type.Union([Type.Integer(), Type.Null()], { description: 'pass as `before` for the next (older) page' }),
});
const CredentialLogQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'entries older than this seq (the previous page\'s nextBefore)' })),
  subject: Type.Optional(Type.String({ maxLength: 200, description: 'one user\'s name, token\'s or key\'s id' })),
}, { additionalProperties: false });

/**
 * `GET /api/audit/verify` (admin): every tamper-evident record recomputed; `GET /api/audit/credentials`
 * (admin): the credential log, newest first (docs/architecture.md#audit-chains).
 */
export function registerAuditRoutes(root: FastifyInstance, deps: { database: Database }): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/api/audit/verify', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Recompute every case history chain, the emergency log, the credential log and the configuration log; name the first row of each altered, deleted or inserted out of place (admin)',
      tags: ['audit'], response: { 200: AuditReport, ...S.authErrors },
    },
  }, async () => verifyAudit(deps.database.db));
  app.get('/api/audit/credentials', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'The credential log: every change of a user or an API token, who made it and when, newest first (admin)',
      tags: ['audit'], querystring: CredentialLogQuery, response: { 200: CredentialLogPage, ...S.authErrors },
    },
  }, async (req) => {
    const rows = await listCredentialLog(deps.database.db, { ...req.query, limit: req.query.limit + 1 });
    const page = rows.slice(0, req.query.limit);
    return {
      items: page.map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
      nextBefore: rows.length > req.query.limit ? page[page.length - 1]!.seq : null,
    };
  });
}
