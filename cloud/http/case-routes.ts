import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ServerResponse } from 'node:http';
import { CsError } from '../../lib/errors.ts';
import type { District } from '../../devices/district.ts';
import { CloudErrors } from '../errors.ts';
import { alarmToJson, alarmUnit, applyAction, caseExtras, caseToJson, historyToJson, iso, visibleCase, type CaseEnv, type CaseRow } from '../cases/index.ts';
import type { Database } from '../db/database.ts';
import type { EventBus, CsEvent } from '../events.ts';
import type { RuleSet } from '../rules.ts';
import { rulesFor } from '../rules.ts';
import { stateDaysOf, type WorkCalendar } from '../calendar.ts';
import { ACTION_ROLES, CASE_ACTIONS, legalActions, RUNNING_STATES, type CaseAction, type CaseState } from '../workflow.ts';
import { principalOf, scopeUnit } from './auth.ts';
import { STAFF_ROLES } from '../roles.ts';
import { registerPeopleRoutes } from './people-routes.ts';
import * as S from './schemas.ts';
import type { StreamLimiter } from '../../lib/http-limits.ts';
import { registerEvaluationRoutes } from '../evaluation/routes.ts';
import { defaultScoringRules, type ScoringRules } from '../evaluation/scoring.ts';

export interface CaseRouteDeps {
  database: Database;
  district: District;
  now: () => number;
  env: CaseEnv;
  events: EventBus;
  ruleSet: RuleSet;
  calendar: WorkCalendar;
  knownUnits: ReadonlySet<string>;
  /** Live event streams per token (429 at the cap); unbounded when omitted. */
  streams?: StreamLimiter;
  /** The evaluation's scoring rules (cloud/evaluation/scoring.ts); Jinhua's example when omitted. */
  scoring?: ScoringRules;
}

const ACTION_SUMMARY: Record<CaseAction, string> = {
  dispatch: 'Dispatch (派遣) a registered case, optionally to another unit',
  accept: 'Accept a dispatched case (the crew takes it)',
  handle: 'Report the case handled (处置, 反馈) with notes and evidence',
  verify: 'Verify (核查) and close (结案); refused while the asset\'s readings are out of range or back for less than the window',
  rework: 'Send a handled case back for rework (返工), with a reason',
  extend: 'Extend the deadline (延期), with a reason; the caller is the approver',
  defer: 'Defer (缓办) the case, with a reason',
  void: 'Void (作废) a false alarm, with a reason; kept, never deleted',
  reopen: 'Reopen a deferred case (resumes) or a closed one (rework)',
  note: 'Add a note (and photos) to the case\'s history; the state stays',
  'on-site': 'The crew is on site: records the on-site milestone reached',
  'made-safe': 'The crew made the site safe: records the made-safe milestone reached',
  'request-extension': 'Ask for an extension (延期申请) with a reason and optionally the deadline wanted; one pending at a time',
  'refuse-extension': 'Refuse the pending extension request, with a reason',
};

/** Cases, alarms, the workflow actions, rules, routing, calendar and the live event stream. */
/** Returns the count of live event streams open now (metrics). */
export function registerCaseRoutes(root: FastifyInstance, deps: CaseRouteDeps): { liveStreams(): number } {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, now, env } = deps;
  const db = database.db;

  app.get('/api/cases', {
    schema: {
      summary: 'Cases, newest first; a crew token sees its own unit only, an inspector the cases it registered',
      tags: ['cases'], querystring: S.CaseQuery, response: { 200: S.CaseList, ...S.authErrors },
    },
  }, async (req) => {
    const { state, unit, hazard, device, limit, cursor, overdue, emergency, area, extensionRequested, source, category, district } = req.query;
    const cls = req.query.class;
    const p = principalOf(req);
    const scope = scopeUnit(p);
    const at = now();
    let q = db.selectFrom('cases').selectAll();
    if (scope !== undefined) q = q.where('unit', '=', scope);
    if (p.role === 'inspector') q = q.where('reporter', '=', p.actor);
    if (source) q = q.where('source', '=', source);
    if (category) q = q.where('category', '=', category);
    if (district) q = q.where('district', '=', district);
    if (unit) q = q.where('unit', '=', unit);
    if (state) q = q.where('state', '=', state);
    if (hazard) q = q.where((eb) => eb.or([eb('hazard', '=', hazard), eb('hazards', 'like', `%"${hazard.replace(/[%_"]/g, '')}"%`)]));
    if (device) q = q.where('device', '=', device);
    if (cls) q = q.where('class', '=', cls);
    if (emergency !== undefined) q = q.where('emergency', '=', emergency ? 1 : 0);
    if (area) q = q.where('grid', 'like', `${area.replace(/[%_]/g, '')}%`);
    if (extensionRequested === true) q = q.where('extension_request', 'is not', null);
    if (extensionRequested === false) q = q.where('extension_request', 'is', null);
    if (overdue === true) q = q.where('state', 'in', RUNNING_STATES).where('deadline_at', '<', at);
    if (overdue === false) q = q.where((eb) => eb.or([eb('state', 'not in', RUNNING_STATES), eb('deadline_at', '>=', at)]));
    if (cursor) {
      const [openedAt, id] = decodeCursor(cursor);
      q = q.where((eb) => eb.or([eb('opened_at', '<', openedAt), eb.and([eb('opened_at', '=', openedAt), eb('id', '<', id)])]));
    }
    const rows = await q.orderBy('opened_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const extras = await caseExtras(db, page, at, env.workflow);
    return { items: page.map((r) => caseToJson(r, at, extras.get(r.id))), nextCursor: rows.length > limit && last ? encodeCursor(Number(last.opened_at), last.id) : null };
  });

  /** One case with one page of its history (oldest first), its alarms and the asset's recent readings. */
  async function detail(row: CaseRow, page: { limit: number; cursor?: string } = { limit: DEFAULT_HISTORY_PAGE }) {
    const id = row.id;
    let hq = db.selectFrom('case_history').selectAll().where('case_id', '=', id);
    if (page.cursor !== undefined) hq = hq.where('seq', '>', decodeHistoryCursor(page.cursor));
    const [history, alarms] = await Promise.all([
      hq.orderBy('seq').limit(page.limit + 1).execute(),
      db.selectFrom('alarms').selectAll().where('case_id', '=', id).orderBy('raised_at').execute(),
    ]);
    const shown = history.slice(0, page.limit);
    const last = shown[shown.length - 1];
    const since = alarms.length ? Math.min(...alarms.map((a) => Number(a.raised_at))) : Number(row.opened_at);
    // Readings since the alarm, by measurement time; a small margin before it shows the rise.
    const at = now();
    const extras = (await caseExtras(db, [row], at, env.workflow)).get(id);
    const readings = await db.selectFrom('readings').select(['ts', 'values_json', 'quality']).where('device', '=', row.device)
      .where('ts', '>=', since - 60_000).orderBy('ts', 'asc').limit(500).execute();
    return {
      ...caseToJson(row, at, extras),
      history: shown.map(historyToJson),
      historyNextCursor: history.length > page.limit && last ? encodeHistoryCursor(Number(last.seq)) : null,
      alarms: alarms.map(alarmToJson),
      // One extension request pending at a time: ask while none is, refuse while one is.
      allowedActions: legalActions(row.state as CaseState)
        .filter((a) => (a === 'request-extension' ? !row.extension_request : a === 'refuse-extension' ? !!row.extension_request : true)),
      readings: readings.map((r) => ({ ts: iso(r.ts), values: JSON.parse(r.values_json), quality: r.quality })),
    };
  }

  app.get('/api/cases/:id', {
    schema: {
      summary: 'One case with its history (paged: `limit`, `cursor`), alarms and the asset\'s readings since the alarm; a crew token gets 404 for another unit\'s case',
      tags: ['cases'], params: S.IdParams, querystring: S.CaseDetailQuery, response: { 200: S.CaseDetail, 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req) => {
    // 404, not 403, for another unit's case: a crew token learns nothing about cases not theirs.
    const row = await visibleCase(db, req.params.id, principalOf(req));
    return detail(row, req.query);
  });

  for (const action of CASE_ACTIONS) {
    app.post(`/api/cases/:id/${action}`, {
      schema: {
        summary: ACTION_SUMMARY[action],
        description: `Roles: ${ACTION_ROLES[action].join(', ')}. An action the case's state does not allow answers 409 naming the state and the action.`,
        tags: ['case actions'], params: S.IdParams, body: S.ActionBody,
        response: { 200: S.CaseDetail, 404: S.ErrorReply, 409: S.ErrorReply, ...S.authErrors },
      },
      config: { roles: ACTION_ROLES[action] },
      // The body is optional: no body is an empty one.
      preValidation: async (req) => { req.body ??= {}; },
    }, async (req, reply) => {
      const principal = principalOf(req);
      const at = now();
      const out = await database.write((trx) => applyAction(trx, {
        id: req.params.id, action, principal, body: req.body ?? {}, at, env, knownUnits: deps.knownUnits,
      }));
      if (out.replayed) {
        // A resend (a crew's offline queue): the case as it is now, nothing applied or announced.
        req.log.info({ caseId: out.row.id, action, actionId: req.body?.actionId }, 'case action replayed');
        void reply.header('x-cs-replayed', '1');
        return detail(out.row);
      }
      req.log.info({ caseId: out.row.id, action, from: out.from, to: out.to, role: principal.role }, 'case action');
      deps.events.emit({
        type: 'case.transition', at: iso(at), caseId: out.row.id, unit: out.row.unit, device: out.row.device, hazard: out.row.hazard,
        state: out.to, data: { action, from: out.from, to: out.to, role: principal.role },
      });
      return detail(out.row);
    });
  }

  // ---- alarms --------------------------------------------------------------------------------

  app.get('/api/alarms', {
    config: { roles: STAFF_ROLES },
    schema: { summary: 'Alarms, newest first; a crew token sees alarms of its unit\'s assets', tags: ['alarms'], querystring: S.AlarmQuery, response: { 200: S.AlarmList, ...S.authErrors } },
  }, async (req) => {
    const p = principalOf(req);
    let q = db.selectFrom('alarms').selectAll();
    if (req.query.active === true) q = q.where('cleared_at', 'is', null);
    if (req.query.active === false) q = q.where('cleared_at', 'is not', null);
    if (req.query.device) q = q.where('device', '=', req.query.device);
    const scope = scopeUnit(p);
    if (scope !== undefined) {
      const mine = deps.district.devices.filter((d) => d.ownerUnit === scope || d.maintainerUnit === scope).map((d) => d.id);
      q = mine.length ? q.where('device', 'in', mine) : q.where('device', '=', '\u0000');
    }
    const rows = await q.orderBy('raised_at', 'desc').orderBy('id', 'desc').limit(req.query.limit).execute();
    return { items: rows.map(alarmToJson) };
  });

  app.post('/api/alarms/:id/ack', {
    config: { roles: ['operator', 'commander', 'admin', 'crew'] },
    schema: { summary: 'Acknowledge an alarm (operator, commander, admin, or the crew of the unit responsible for it: its case\'s unit, else the asset\'s owner for a hazard and its maintainer for device health)', tags: ['alarms'], params: S.IdParams, response: { 200: S.Alarm, 404: S.ErrorReply, ...S.authErrors } },
  }, async (req) => {
    const p = principalOf(req);
    const at = now();
    const row = await database.write(async (trx) => {
      const a = await trx.selectFrom('alarms').selectAll().where('id', '=', req.params.id).executeTakeFirst();
      const dev = a && deps.district.devices.find((d) => d.id === a.device);
      // A crew sees the alarms of its unit's assets (404 otherwise) and acknowledges those its unit is responsible for.
      if (!a || (p.role === 'crew' && dev?.ownerUnit !== p.unit && dev?.maintainerUnit !== p.unit)) {
        throw new CsError(CloudErrors.ALARM_NOT_FOUND, `no alarm "${req.params.id}"`);
      }
      if (p.role === 'crew' && dev) {
        const unit = await alarmUnit(trx, a, dev);
        if (unit !== p.unit) throw new CsError(CloudErrors.FORBIDDEN, `alarm ${a.id} (${a.hazard}) is ${unit}'s to acknowledge, not ${p.unit}'s`);
      }
      if (a.acked_at !== null) return a;
      await trx.updateTable('alarms').set({ acked_at: at, acked_by: p.actor }).where('id', '=', a.id).where('acked_at', 'is', null).execute();
      return { ...a, acked_at: at, acked_by: p.actor };
    });
    deps.events.emit({ type: 'alarm.acknowledged', at: iso(at), alarmId: row.id, caseId: row.case_id ?? undefined, device: row.device, hazard: row.hazard, data: { by: p.actor, role: p.role } });
    return alarmToJson(row);
  });

  // ---- configuration as data -----------------------------------------------------------------

  app.get('/api/rules', {
    schema: {
      summary: 'Rules per device kind (profile) with per-device overrides; `?device=ID` gives one device\'s effective rules',
      tags: ['configuration'], querystring: Type.Object({ device: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
      response: { 200: Type.Object({ kinds: Type.Record(Type.String(), Type.Array(Type.Unknown())), devices: Type.Record(Type.String(), Type.Array(Type.Unknown())) }), ...S.authErrors },
    },
  }, async (req) => {
    if (req.query.device) {
      const d = deps.district.devices.find((x) => x.id === req.query.device);
      if (!d) throw new CsError(CloudErrors.DEVICE_NOT_FOUND, `no device "${req.query.device}"`);
      return { kinds: {}, devices: { [d.id]: rulesFor(deps.ruleSet, d.profile, d.id) } };
    }
    return deps.ruleSet;
  });

  app.get('/api/routing', {
    schema: { summary: 'Routing rules, unit members and duty leaders, case categories (time limits, merge groups)', tags: ['configuration'], response: { 200: Type.Object({ routing: Type.Unknown(), categories: Type.Unknown() }), ...S.authErrors } },
  }, async () => ({ routing: env.routing, categories: env.categories }));

  app.get('/api/calendar', {
    schema: { summary: 'The work calendar: working hours, weekend, public holidays and adjusted working days (调休): the city\'s own (`holidays`, `workdays`) and, in `state`, the State Council\'s of this year and the next (chinese-days)', tags: ['configuration'], response: { 200: Type.Unknown(), ...S.authErrors } },
  }, async () => ({
    ...deps.calendar,
    state: stateDaysOf(deps.calendar, new Date(now() + deps.calendar.utcOffsetMinutes * 60_000).getUTCFullYear()),
  }));

  // ---- live stream ---------------------------------------------------------------------------

  const streams = new Set<ServerResponse>();
  root.addHook('preClose', async () => {
    for (const s of streams) s.end();
    streams.clear();
  });

  app.get('/api/events', {
    config: { roles: STAFF_ROLES },
    schema: {
      summary: 'Live case and alarm events as server-sent events (text/event-stream); a crew token gets its unit\'s events only',
      tags: ['events'], response: { 429: S.ErrorReply, ...S.authErrors },
    },
  }, (req, reply) => {
    const p = principalOf(req);
    const scope = scopeUnit(p);
    const release = deps.streams ? deps.streams.acquire(p.tokenId) : () => undefined;
    if (!release) throw new CsError(CloudErrors.TOO_MANY_STREAMS, 'too many live event streams on this token; close one first');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': citysteward events\n\n');
    streams.add(res);
    const send = (e: CsEvent) => {
      if (scope !== undefined && e.unit !== scope) return;
      res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    const unsubscribe = deps.events.subscribe(send, { remote: true });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    heartbeat.unref();
    const done = () => {
      release();
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    };
    res.on('close', done);
    req.raw.on('close', done);
  });
  registerEvaluationRoutes(root, {
    // Read through: the calendar may be changed at runtime (cloud/config/).
    database, now, get utcOffsetMinutes() { return deps.calendar.utcOffsetMinutes; }, rules: deps.scoring ?? defaultScoringRules(),
    get units() { return deps.district.units; }, // the live registry's (cloud/registry/)
  });
  registerPeopleRoutes(root, { database, now, env, events: deps.events });
  return { liveStreams: () => streams.size };
}

/** History entries on one page of a case's detail unless `limit` says otherwise. */
const DEFAULT_HISTORY_PAGE = 100;

function encodeHistoryCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ after: seq })).toString('base64url');
}

function decodeHistoryCursor(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (Number.isSafeInteger(v?.after)) return v.after as number;
  } catch { /* answered below */ }
  throw new CsError(CloudErrors.BAD_CURSOR, 'query parameter "cursor" is not a history cursor this API gave out');
}

function encodeCursor(openedAt: number, id: string): string {
  return Buffer.from(JSON.stringify([openedAt, id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') return [v[0], v[1]];
  } catch { /* answered below */ }
  throw new CsError(CloudErrors.BAD_CURSOR, 'query parameter "cursor" is not a cursor this API gave out');
}
