import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CsError } from '../../lib/errors.ts';
import type { SchemaProblem } from '../../lib/schema.ts';
import { CloudErrors, statusOf } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { errorBody } from '../http/errors.ts';
import * as S from '../http/schemas.ts';
import { CONFIG_KINDS, ConfigKindT, ConfigOutcomeT, ConfigSourceT, KINDS, type ConfigKind } from './kinds.ts';
import type { ConfigService } from './service.ts';

/**
 * The admin API of configuration as data (README "Configuration as data"): read the kinds and their
 * documents (admin, operator), change one whole (admin), read the audit of changes applied and refused.
 */

const At = Type.String({ format: 'date-time' });
const KindVersion = Type.Object({
  kind: ConfigKindT, version: Type.Integer({ description: 'increases by one with each change applied; 0: never stored' }),
  updatedAt: Type.Union([At, Type.Null()]), updatedBy: Type.String({ description: '`user:NAME`, `token:ID` or `config-file`' }),
});
const Problem = Type.Object({ key: Type.String({ description: 'the key in the document, e.g. `kinds.water-level[2].value`' }), message: Type.String() });
const Refusal = Type.Object({
  statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String(),
  problems: Type.Optional(Type.Array(Problem, { description: 'every problem found; nothing was changed' })),
}, { description: 'A change refused whole (CS_CLOUD_CONFIG_REFUSED, 400, with `problems`) or based on a stale version (CS_CLOUD_CONFIG_STALE, 409); a body that is not `{ document, baseVersion }` is CS_CLOUD_VALIDATION' });
const KindParams = Type.Object({ kind: ConfigKindT }, { additionalProperties: false });
const documentAbout = `The kind's whole document: ${CONFIG_KINDS.map((k) => `\`${k}\`: ${KINDS[k].about}`).join('; ')}`;
const ChangeBody = Type.Object({
  document: Type.Unknown({ description: documentAbout }),
  baseVersion: Type.Optional(Type.Integer({ minimum: 0, description: 'the version this change was based on: refused (409) when another change came first' })),
}, { additionalProperties: false });
const ChangeReply = Type.Object({
  kind: ConfigKindT, version: Type.Integer(), changed: Type.Boolean({ description: 'false: the document equals the one in force (no new version)' }),
  summary: Type.String({ description: 'the keys changed, with old and new values for single values' }),
});
const Change = Type.Object({
  seq: Type.Integer(), at: At, kind: ConfigKindT, actor: Type.String(), source: ConfigSourceT, outcome: ConfigOutcomeT,
  version: Type.Union([Type.Integer(), Type.Null()], { description: 'the version made (applied); null when refused' }),
  summary: Type.String(), before: Type.Unknown({ description: 'the document before (applied; null for the first version)' }),
  after: Type.Unknown({ description: 'the document after (applied) or offered (refused)' }),
  problems: Type.Union([Type.Array(Problem), Type.Null()], { description: 'why it was refused' }),
  hash: Type.String({ description: 'the row\'s link in the hash chain (citysteward audit verify)' }),
});
const ChangesQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'entries older than this seq (the previous page\'s nextBefore)' })),
  kind: Type.Optional(ConfigKindT),
}, { additionalProperties: false });
const iso = (ms: number) => (ms ? new Date(ms).toISOString() : null);

export function configRoutes(root: FastifyInstance, deps: { config: ConfigService }): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['configuration'];
  app.get('/api/config', {
    config: { roles: ['admin', 'operator'] },
    schema: { summary: 'The kinds of configuration and each one\'s version (admin, operator)', tags, response: { 200: Type.Object({ kinds: Type.Array(KindVersion) }), ...S.authErrors } },
  }, async () => ({ kinds: (await deps.config.list()).map((k) => ({ ...k, updatedAt: iso(k.updatedAt) })) }));

  app.get('/api/config/changes', {
    config: { roles: ['admin', 'operator'] },
    schema: { summary: 'The audit of configuration changes, applied and refused: who, what, before, after, newest first (admin, operator)', tags, querystring: ChangesQuery, response: { 200: Type.Object({ items: Type.Array(Change), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }), ...S.authErrors } },
  }, async (req) => {
    const rows = await deps.config.changes({ ...req.query, limit: req.query.limit + 1 });
    const page = rows.slice(0, req.query.limit);
    return { items: page.map((r) => ({ ...r, at: new Date(r.at).toISOString() })), nextBefore: rows.length > req.query.limit ? page[page.length - 1]!.seq : null };
  });

  app.get('/api/config/:kind', {
    config: { roles: ['admin', 'operator'] },
    schema: { summary: 'One kind\'s document in force and its version (admin, operator)', tags, params: KindParams, response: { 200: Type.Intersect([KindVersion, Type.Object({ document: Type.Unknown({ description: documentAbout }) })]), ...S.authErrors } },
  }, async (req) => {
    const r = await deps.config.get(req.params.kind as ConfigKind);
    return { ...r, updatedAt: iso(r.updatedAt) };
  });

  app.put('/api/config/:kind', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Replace one kind\'s whole document: checked whole, refused whole with every problem (400) or stored, audited and applied at once on every worker, without a restart (admin)',
      tags, params: KindParams, body: ChangeBody, response: { 200: ChangeReply, 400: Refusal, 409: Refusal, 401: S.ErrorReply, 403: S.ErrorReply },
    },
  }, async (req, reply) => {
    try {
      return await deps.config.change(req.params.kind as ConfigKind, req.body.document, { actor: principalOf(req).actor, source: 'api', baseVersion: req.body.baseVersion });
    } catch (err) {
      const e = err as CsError;
      if (e.code !== CloudErrors.CONFIG_REFUSED && e.code !== CloudErrors.CONFIG_STALE) throw err;
      return reply.code(statusOf(e.code) as 400 | 409).send({ ...errorBody(statusOf(e.code), e.code, e.message), problems: (e.details?.problems ?? []) as SchemaProblem[] });
    }
  });
}
