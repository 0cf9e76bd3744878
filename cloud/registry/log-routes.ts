import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Database } from '../db/database.ts';
import * as HS from '../http/schemas.ts';
import { listRegistryLog, REGISTRY_ENTITIES, REGISTRY_OPS, type RegistryEntity } from './log.ts';

/** `GET /api/registry/changes` (admin, operator): the registry log, newest first (cloud/registry/log.ts). */

const EntityT = Type.Union(REGISTRY_ENTITIES.map((e) => Type.Literal(e)));
const Query = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  before: Type.Optional(Type.Integer({ minimum: 1, description: 'entries older than this seq (the previous page\'s nextBefore)' })),
  entity: Type.Optional(EntityT),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'one entity\'s id (a district\'s county code)' })),
}, { additionalProperties: false });
const Entry = Type.Object({
  seq: Type.Integer(), at: Type.String({ format: 'date-time' }), actor: Type.String({ description: '`user:NAME` or `token:ID`' }),
  op: Type.Union(REGISTRY_OPS.map((o) => Type.Literal(o))), entity: EntityT,
  id: Type.Union([Type.String(), Type.Null()], { description: 'null for an import (one entry with its counts)' }),
  version: Type.Integer({ description: 'the registry version the change made' }),
  summary: Type.String({ description: 'what changed, each field as `field: old → new`' }),
  before: Type.Unknown({ description: 'the entity with its stamps before (null when created or an import)' }),
  after: Type.Unknown({ description: 'the entity after; an import\'s counts' }),
  hash: Type.String(),
});

export function registerRegistryLogRoutes(root: FastifyInstance, deps: { database: Database }): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/api/registry/changes', {
    config: { roles: ['admin', 'operator'] },
    schema: {
      summary: 'The registry log: every create, update, move, retire and import, who, what, before, after, newest first; filter by entity and id (admin, operator)',
      tags: ['registry'], querystring: Query,
      response: { 200: Type.Object({ items: Type.Array(Entry), nextBefore: Type.Union([Type.Integer(), Type.Null()]) }), ...HS.authErrors },
    },
  }, async (req) => {
    const q = req.query;
    const rows = await listRegistryLog(deps.database.db, { limit: q.limit + 1, before: q.before, entity: q.entity as RegistryEntity | undefined, id: q.id });
    const page = rows.slice(0, q.limit);
    return { items: page.map((r) => ({ ...r, at: new Date(r.at).toISOString() })), nextBefore: rows.length > q.limit ? page[page.length - 1]!.seq : null };
  });
}
