import { STATUS_CODES } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { principalOf } from '../http/auth.ts';
import { CapError, MAX_CAP_BYTES } from './cap.ts';
import { EmergencyErrors } from './errors.ts';
import type { Emergency } from './service.ts';

/**
 * The command centre's routes: the mode (read, switch), the warning endpoint (CAP 1.2 XML) and the
 * situation board. Errors use the cloud's `{ statusCode, code, error, message }` shape.
 */

const Level = Type.Union([Type.Literal('IV'), Type.Literal('III'), Type.Literal('II'), Type.Literal('I')]);
const SwitchBody = Type.Object({
  mode: Type.Union([Type.Literal('emergency'), Type.Literal('normal')]),
  level: Type.Optional(Level),
  reason: Type.String({ minLength: 3, maxLength: 500 }),
}, { additionalProperties: false });

const ErrorReply = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String() });

function fail(reply: FastifyReply, statusCode: number, code: string, message: string) {
  return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message });
}

function requireRole(req: FastifyRequest, reply: FastifyReply, roles: string[]): boolean {
  const p = principalOf(req);
  if (roles.includes(p.role)) return true;
  void fail(reply, 403, 'CS_CLOUD_FORBIDDEN', `role ${p.role} may not do this (needs ${roles.join(' or ')})`);
  return false;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

export interface EmergencyRouteDeps {
  emergency: Emergency;
  db: Kysely<any>;
  district: District;
  profiles: Map<string, Profile>;
  now: () => number;
}

export async function emergencyRoutes(app: FastifyInstance, deps: EmergencyRouteDeps): Promise<void> {
  const { emergency, db, district, profiles, now } = deps;

  // CAP arrives as XML; keep the raw text for the parser (which bounds and validates it).
  app.addContentTypeParser(['application/cap+xml', 'application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: MAX_CAP_BYTES }, (_req, body, done) => done(null, body));

  app.get('/api/emergency', {
    schema: { summary: 'The current mode, gateway acknowledgements and the audit log', tags: ['emergency'], security: [{ bearer: [] }] },
  }, async () => {
    const s = emergency.status();
    return {
      mode: s.state.mode, level: s.state.level, since: iso(s.state.since || null), actor: s.state.actor, reason: s.state.reason,
      source: s.state.source, alerts: s.state.alerts, epoch: s.state.epoch, unitsOnDuty: s.unitsOnDuty,
      gateways: s.gateways,
      log: (await emergency.store.log(50)).map((e) => ({ ...e, at: iso(e.at) })),
    };
  });

  app.post('/api/emergency', {
    schema: { summary: 'Switch emergency mode (commander, admin)', tags: ['emergency'], body: SwitchBody, security: [{ bearer: [] }], response: { 403: ErrorReply } },
  }, async (req, reply) => {
    if (!requireRole(req, reply, ['commander', 'admin'])) return reply;
    const body = req.body as { mode: 'emergency' | 'normal'; level?: 'IV' | 'III' | 'II' | 'I'; reason: string };
    if (body.mode === 'emergency' && !body.level) return fail(reply, 400, EmergencyErrors.MODE_INVALID.code, 'body field "level" is required to enter emergency mode (IV, III, II or I)');
    if (body.mode === 'normal' && body.level) return fail(reply, 400, EmergencyErrors.MODE_INVALID.code, 'body field "level" applies to emergency mode only');
    const p = principalOf(req);
    const state = await emergency.switchMode({ mode: body.mode, level: body.level, actor: `token:${p.tokenId}`, role: p.role, reason: body.reason });
    return { mode: state.mode, level: state.level, since: iso(state.since), epoch: state.epoch, reason: state.reason };
  });

  app.post('/api/warnings', {
    schema: {
      summary: 'Receive a CAP 1.2 warning (XML body; idempotent on sender and identifier)', tags: ['emergency'], security: [{ bearer: [] }],
      consumes: ['application/cap+xml', 'application/xml', 'text/xml'],
    },
  }, async (req, reply) => {
    if (!requireRole(req, reply, ['commander', 'admin'])) return reply;
    if (typeof req.body !== 'string') return fail(reply, 415, 'CS_CAP_CONTENT_TYPE', 'send the CAP document as application/cap+xml (or application/xml)');
    try {
      const p = principalOf(req);
      const r = await emergency.receiveWarning(req.body, `token:${p.tokenId}`);
      req.log.info({ cap: r.identifier, msgType: r.msgType, decision: r.decision, duplicate: r.duplicate }, 'warning received');
      return reply.code(r.duplicate ? 200 : 202).send({
        identifier: r.identifier, sender: r.sender, msgType: r.msgType, status: r.status, duplicate: r.duplicate, decision: r.decision,
        mode: { mode: r.state.mode, level: r.state.level, epoch: r.state.epoch },
      });
    } catch (err) {
      if (err instanceof CapError) {
        req.log.warn({ code: err.code, reason: err.message }, 'warning refused');
        return fail(reply, err.statusCode, err.code, err.message);
      }
      throw err;
    }
  });

  app.get('/api/situation', {
    schema: { summary: 'The command centre board: open emergency cases by deadline, overdue, counts by district and unit, gateways, water tiers', tags: ['emergency'], security: [{ bearer: [] }] },
  }, async (req, reply) => {
    if (!requireRole(req, reply, ['commander', 'admin', 'operator', 'verifier'])) return reply;
    const t = now();
    const open = await db.selectFrom('cases').selectAll()
      .where(sql<boolean>`state not in ('closed', 'void')`)
      .where('emergency', '=', 1)
      .orderBy('deadline_at', 'asc').limit(500).execute();
    const devices = new Map(district.devices.map((d) => [d.id, d]));
    const districtOf = (device: string) => devices.get(device)?.componentCode.slice(0, 6) ?? 'unknown';
    const count = (key: (c: Record<string, any>) => string) => open.reduce<Record<string, number>>((acc, c) => { acc[key(c)] = (acc[key(c)] ?? 0) + 1; return acc; }, {});
    const asCase = (c: Record<string, any>) => ({
      id: c.id, device: c.device, hazard: c.hazard, severity: c.severity, state: c.state, unit: c.unit,
      deadline: iso(c.deadline_at), overdueByMs: t > Number(c.deadline_at) ? t - Number(c.deadline_at) : 0, district: districtOf(c.device),
    });
    const status = emergency.status();

    // Water-level sensors against their tiers (the profile's thresholds on the level point).
    const states = await db.selectFrom('device_state').selectAll().execute();
    const latest = new Map(states.map((s) => [s.device, JSON.parse(s.last_values) as Record<string, unknown>]));
    const tiers: Record<string, string[]> = {};
    for (const d of district.devices) {
      const profile = profiles.get(d.profile);
      if (profile?.kind !== 'water-level') continue;
      for (const th of profile.thresholds.filter((x) => x.op === '>' && typeof x.value === 'number' && x.hazard === 'waterlogging')) {
        const v = latest.get(d.id)?.[th.point];
        if (typeof v === 'number' && v > (th.value as number)) (tiers[th.id] ??= []).push(d.id);
        else tiers[th.id] ??= [];
      }
    }
    return {
      mode: { mode: status.state.mode, level: status.state.level, since: iso(status.state.since || null), reason: status.state.reason },
      at: iso(t),
      openEmergencyCases: open.map(asCase),
      overdue: open.filter((c) => Number(c.deadline_at) < t).map(asCase),
      countsByDistrict: count((c) => districtOf(c.device)),
      countsByUnit: count((c) => c.unit),
      gateways: { acknowledged: status.gateways.acknowledged, missing: status.gateways.missing, lastAckAfterMs: status.gateways.lastAckAfterMs },
      unitsOnDuty: status.unitsOnDuty ? district.units.map((u) => ({ id: u.id, name: u.name, dutyContact: u.dutyContact ?? null })) : [],
      waterTiers: tiers,
    };
  });

}
