import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { principalOf } from '../http/auth.ts';
import * as S from '../http/schemas.ts';
import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { EventBus } from '../events.ts';
import { REPORT_STATES, requestJson, type RegisterCitizenCase, type ReportStore, type ReportView } from './reports.ts';
import type { ServiceCatalogue } from './services.ts';

/**
 * The unified acceptance (统一受理) of citizen reports: operators (and admins) list the pending ones
 * and accept each (a case with source citizen is registered and dispatched) or refuse it with a reason.
 */

const ROLES = ['operator', 'admin'] as const;
const Report = Type.Object({
  id: Type.String(), serviceCode: Type.String(), serviceName: Type.String(), description: Type.String(),
  lat: Type.Union([Type.Number(), Type.Null()]), lon: Type.Union([Type.Number(), Type.Null()]),
  address: Type.Union([Type.String(), Type.Null()]), mediaUrl: Type.Union([Type.String(), Type.Null()]),
  contact: Type.Record(Type.String(), Type.String(), { description: 'what the citizen gave: email, phone, first_name, last_name, account_id, device_id' }),
  state: Type.Union(REPORT_STATES.map((s) => Type.Literal(s))),
  reason: Type.Union([Type.String(), Type.Null()]),
  requestedAt: Type.String({ format: 'date-time' }),
  decidedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  decidedBy: Type.Union([Type.String(), Type.Null()]),
  caseId: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('open'), Type.Literal('closed')], { description: 'what the citizen sees (Open311)' }),
  statusNotes: Type.String(),
});
const ReportList = Type.Object({ items: Type.Array(Report) });
const ReportQuery = Type.Object({
  status: Type.Optional(Type.Union([...REPORT_STATES, 'all'].map((s) => Type.Literal(s)), { default: 'pending' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
}, { additionalProperties: false });
const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });
const AcceptBody = Type.Object({
  category: Type.Optional(Type.String({ maxLength: 64, description: 'another catalogue category than the citizen chose' })),
  lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90, description: 'the point, when the citizen gave only an address' })),
  lon: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
}, { additionalProperties: false });
const RefuseBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 2000, description: 'shown to the citizen as status_notes' }) }, { additionalProperties: false });
const Decided = Type.Object({ id: Type.String(), state: Type.String(), caseId: Type.Union([Type.String(), Type.Null()]) });

export interface OperatorDeps {
  reports: ReportStore;
  services: ServiceCatalogue;
  unitName(id: string): string;
  /** Registers the case of an accepted report (cloud/cases/person.ts registerPersonCase). */
  register: RegisterCitizenCase;
  events: EventBus;
  db: Kysely<DB>;
}

export function registerCitizenReportRoutes(root: FastifyInstance, deps: OperatorDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const view = (r: ReportView) => {
    const o = requestJson(r, deps.services, deps.unitName, 'zh');
    return {
      id: r.id, serviceCode: r.serviceCode, serviceName: String(o.service_name), description: r.description, lat: r.lat, lon: r.lon,
      address: r.addressString, mediaUrl: r.mediaUrl, contact: r.contact as Record<string, string>, state: r.state, reason: r.reason,
      requestedAt: new Date(r.requestedAt).toISOString(), decidedAt: r.decidedAt == null ? null : new Date(r.decidedAt).toISOString(),
      decidedBy: r.decidedBy, caseId: r.caseId, status: o.status as 'open' | 'closed', statusNotes: String(o.status_notes),
    };
  };

  app.get('/api/citizen-reports', {
    config: { roles: ROLES },
    schema: {
      summary: 'Citizen reports (Open311) by state, newest first: pending ones wait for acceptance (受理) (operator, admin)',
      tags: ['citizen reports'], querystring: ReportQuery, response: { 200: ReportList, ...S.authErrors },
    },
  }, async (req) => {
    const status = req.query.status ?? 'pending';
    const rows = await deps.reports.load({ states: status === 'all' ? undefined : [status as (typeof REPORT_STATES)[number]], limit: req.query.limit ?? 100 });
    return { items: rows.map(view) };
  });

  app.post('/api/citizen-reports/:id/accept', {
    config: { roles: ROLES },
    schema: {
      summary: 'Accept (受理) a pending citizen report: a case with source citizen is registered and dispatched (operator, admin)',
      tags: ['citizen reports'], params: Id, body: AcceptBody, response: { 200: Decided, ...S.authErrors, 404: S.ErrorReply, 409: S.ErrorReply },
    },
  }, async (req) => {
    const p = principalOf(req);
    const caseId = await deps.reports.accept(req.params.id, { actor: p.actor, role: p.role }, deps.register, deps.services, req.body ?? {});
    const c = await deps.db.selectFrom('cases').select(['unit', 'device', 'hazard', 'state', 'category', 'opened_at']).where('id', '=', caseId).executeTakeFirstOrThrow();
    req.log.info({ reportId: req.params.id, caseId, unit: c.unit }, 'citizen report accepted');
    deps.events.emit({
      type: 'case.opened', at: new Date(Number(c.opened_at)).toISOString(), caseId, unit: c.unit, device: c.device, hazard: c.hazard, state: c.state,
      data: { source: 'citizen', category: c.category, report: req.params.id },
    });
    return { id: req.params.id, state: 'accepted', caseId };
  });

  app.post('/api/citizen-reports/:id/refuse', {
    config: { roles: ROLES },
    schema: {
      summary: 'Refuse a pending citizen report with a reason, shown to the citizen (operator, admin)',
      tags: ['citizen reports'], params: Id, body: RefuseBody, response: { 200: Decided, ...S.authErrors, 404: S.ErrorReply, 409: S.ErrorReply },
    },
  }, async (req) => {
    await deps.reports.refuse(req.params.id, principalOf(req).actor, req.body.reason);
    req.log.info({ reportId: req.params.id }, 'citizen report refused');
    return { id: req.params.id, state: 'refused', caseId: null };
  });
}
