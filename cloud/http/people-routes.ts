import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { caseExtras, caseToJson, iso, type CaseEnv } from '../cases/index.ts';
import { registerPersonCase } from '../cases/person.ts';
import { Catalogue, DEMO_CATALOGUE } from '../catalogue/index.ts';
import type { Database } from '../db/database.ts';
import type { EventBus } from '../events.ts';
import type { Role } from '../roles.ts';
import { principalOf } from './auth.ts';
import * as S from './schemas.ts';

/** Cases from people (README "Cases from people"): the category catalogue and registering a case. */

export interface PeopleRouteDeps {
  database: Database;
  now: () => number;
  env: CaseEnv;
  events: EventBus;
}

/** Who registers cases: inspectors (their own finds), operators (hotline, accepted citizen reports), integrators, admin. */
export const REGISTER_ROLES: readonly Role[] = ['inspector', 'operator', 'integrator', 'admin'];

const PersonSource = Type.Union([Type.Literal('inspector'), Type.Literal('hotline'), Type.Literal('citizen')]);

export const NewCaseBody = Type.Object({
  category: Type.String({ minLength: 1, maxLength: 32, description: 'catalogue category code (GET /api/catalogue), e.g. E0102' }),
  location: Type.Object({
    lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
    lon: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
    address: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    componentCode: Type.Optional(Type.String({ pattern: '^[0-9]{16}$', description: 'the asset\'s component code, when the problem is an asset: links its device' })),
    grid: Type.Optional(Type.String({ pattern: '^[0-9]{6,15}$', description: 'the grid cell code' })),
  }, { additionalProperties: false, description: 'a point (lat, lon), or an asset by its component code, or both; an address' }),
  description: Type.String({ minLength: 1, maxLength: 2000 }),
  photos: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { maxItems: 20, description: 'ids of photos uploaded first (POST /api/photos)' })),
  source: Type.Optional(PersonSource),
  selfCorrected: Type.Optional(Type.Boolean({ description: 'inspector only: fixed on the spot (自查自纠), registered and closed in one step' })),
  clientId: Type.Optional(Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'client-chosen id: a resend answers the first case (header x-cs-replayed: 1)' })),
}, { additionalProperties: false });

export function registerPeopleRoutes(root: FastifyInstance, deps: PeopleRouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, now, env } = deps;

  app.get('/api/catalogue', {
    schema: {
      summary: 'The category catalogue (GB/T 30428.2 / CJ/T 214 shape): components (部件) and events (事件), time limits, routing, the sensor hazards each covers',
      tags: ['configuration'], response: { 200: Catalogue, ...S.authErrors },
    },
  }, async () => env.catalogue ?? DEMO_CATALOGUE);

  app.post('/api/cases', {
    config: { roles: REGISTER_ROLES },
    schema: {
      summary: 'Register a case from people: an inspector\'s find, a hotline call, a citizen\'s report; dispatched to the routed unit with the category\'s deadline',
      description: 'An inspector\'s source is always inspector (selfCorrected: registered and closed at once); others give source hotline or citizen. Unknown category: 400 CS_CLOUD_CATEGORY_UNKNOWN; a bad point, asset, photo or source: 400 CS_CLOUD_CASE_BAD_INPUT.',
      tags: ['cases'], body: NewCaseBody, response: { 200: S.Case, 201: S.Case, ...S.authErrors },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    const body = req.body;
    const source = p.role === 'inspector' ? 'inspector' : body.source;
    if (!source) throw new CsError(CloudErrors.CASE_BAD_INPUT, 'source is required: hotline or citizen (an inspector\'s is inspector)');
    if (source === 'inspector' && p.role !== 'admin' && p.role !== 'inspector') {
      throw new CsError(CloudErrors.CASE_BAD_INPUT, `source inspector is for inspectors; a ${p.role} registers hotline or citizen cases`);
    }
    const at = now();
    const out = await database.write((trx) => registerPersonCase(trx, env, {
      category: body.category, location: body.location, description: body.description, photos: body.photos, source,
      selfCorrected: body.selfCorrected, clientId: body.clientId, reporter: { actor: p.actor, role: p.role }, at,
    }));
    const extras = (await caseExtras(database.db, [out.row], at, env.workflow)).get(out.row.id);
    const json = caseToJson(out.row, at, extras);
    if (out.replayed) {
      req.log.info({ caseId: out.row.id, clientId: body.clientId }, 'person case replayed');
      return reply.code(200).header('x-cs-replayed', '1').send(json);
    }
    req.log.info({ caseId: out.row.id, category: body.category, source, unit: out.row.unit, selfCorrected: json.selfCorrected }, 'person case registered');
    deps.events.emit({
      type: 'case.opened', at: iso(at), caseId: out.row.id, unit: out.row.unit, device: out.row.device, hazard: out.row.hazard, state: out.row.state,
      data: { source, category: body.category, selfCorrected: json.selfCorrected },
    });
    return reply.code(201).send(json);
  });
}
