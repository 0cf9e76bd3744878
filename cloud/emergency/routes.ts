import { derive } from '../registry/view.ts';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { principalOf } from '../http/auth.ts';
import * as S from '../http/schemas.ts';
import { iso } from '../cases/index.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import { RUNNING_STATES } from '../../lib/vocabulary.ts';
import type { DB } from '../db/schema.ts';
import { CapError, MAX_CAP_BYTES } from './cap.ts';
import { EmergencyErrors } from './errors.ts';
import { LEVELS } from './policy.ts';
import type { Emergency } from './service.ts';
import { CityModeT } from '../../lib/vocabulary.ts';

/**
 * The command centre's routes: the mode (read, switch), the warning endpoint (CAP 1.2 XML) and the
 * situation board. Errors go through the cloud's central handler (`{ statusCode, code, error, message }`).
 */

const SwitchBody = Type.Object({
  mode: CityModeT,
  level: Type.Optional(Type.Union(LEVELS.map((l) => Type.Literal(l)))),
  reason: Type.String({ minLength: 3, maxLength: 500 }),
}, { additionalProperties: false });

/** The board lists at most this many cases per list; its counts cover every case. */
const BOARD_LIMIT = 500;
/** Warnings listed on the board and with the mode, newest first. */
const WARNINGS_LIMIT = 20;

const isoOrNull = (ms: number | null) => (ms ? iso(ms) : null);

export interface EmergencyRouteDeps {
  emergency: Emergency;
  db: Kysely<DB>;
  district: District;
  profiles: Map<string, Profile>;
  now: () => number;
}

export async function emergencyRoutes(app: FastifyInstance, deps: EmergencyRouteDeps): Promise<void> {
  const { emergency, db, district, now } = deps;
  // Live registry (cloud/registry/view.ts): derived again after each registry change.
  const districtOfDevice = derive(() => district.devices, (devs) => new Map(devs.map((d) => [d.id, d.componentCode.slice(0, 6)])));
  // Water-level sensors and their waterlogging tiers: derived from the registry once per change.
  const tierChecks = derive(() => district.devices, (devs) => devs.flatMap((d) => {
    const profile = deps.profiles.get(d.profile);
    if (profile?.kind !== 'water-level') return [];
    return profile.thresholds
      .filter((t) => t.op === '>' && typeof t.value === 'number' && t.hazard === 'waterlogging')
      .map((t) => ({ device: d.id, tier: t.id, point: t.point, limit: t.value as number }));
  }));

  /** The latest warnings received (CAP), newest first, each with what it did to the mode (its decision). */
  async function recentWarnings() {
    const rows = await db.selectFrom('cap_alerts').selectAll().orderBy('received_at', 'desc').limit(WARNINGS_LIMIT).execute();
    return rows.map((r) => ({
      sender: r.sender, identifier: r.identifier, sent: iso(r.sent), status: r.status, msgType: r.msg_type,
      receivedAt: iso(r.received_at), decision: JSON.parse(r.decision) as Record<string, unknown>,
    }));
  }

  // CAP arrives as XML; keep the raw text for the parser (which bounds and validates it).
  app.addContentTypeParser(['application/cap+xml', 'application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: MAX_CAP_BYTES }, (_req, body, done) => done(null, body));

  app.get('/api/emergency', {
    schema: { summary: 'The current mode, gateway acknowledgements and the audit log', tags: ['emergency'], security: [{ bearer: [] }] },
  }, async () => {
    const s = emergency.status();
    return {
      mode: s.state.mode, level: s.state.level, since: isoOrNull(s.state.since), actor: s.state.actor, reason: s.state.reason,
      source: s.state.source, alerts: s.state.alerts, epoch: s.state.epoch, unitsOnDuty: s.unitsOnDuty,
      gateways: s.gateways,
      warnings: (await recentWarnings()).map((w) => ({ ...w, inForce: s.state.alerts.includes(w.identifier) })),
      log: (await emergency.store.log(50)).map((e) => ({ ...e, at: iso(e.at) })),
    };
  });

  app.post('/api/emergency', {
    config: { roles: ['commander', 'admin'] },
    schema: { summary: 'Switch emergency mode (commander, admin)', tags: ['emergency'], body: SwitchBody, security: [{ bearer: [] }], response: { 403: S.ErrorReply } },
  }, async (req) => {
    const body = req.body as { mode: 'emergency' | 'normal'; level?: (typeof LEVELS)[number]; reason: string };
    if (body.mode === 'emergency' && !body.level) throw new CsError(EmergencyErrors.MODE_INVALID.code, 'body field "level" is required to enter emergency mode (IV, III, II or I)');
    if (body.mode === 'normal' && body.level) throw new CsError(EmergencyErrors.MODE_INVALID.code, 'body field "level" applies to emergency mode only');
    const p = principalOf(req);
    const state = await emergency.switchMode({ mode: body.mode, level: body.level, actor: p.actor, role: p.role, reason: body.reason });
    return { mode: state.mode, level: state.level, since: iso(state.since), epoch: state.epoch, reason: state.reason };
  });

  app.post('/api/warnings', {
    config: { roles: ['commander', 'admin'] },
    schema: {
      summary: 'Receive a CAP 1.2 warning (XML body; idempotent on sender and identifier)', tags: ['emergency'], security: [{ bearer: [] }],
      consumes: ['application/cap+xml', 'application/xml', 'text/xml'],
    },
  }, async (req, reply) => {
    if (typeof req.body !== 'string') throw new CsError(EmergencyErrors.CAP_CONTENT_TYPE.code, 'send the CAP document as application/cap+xml (or application/xml)');
    const p = principalOf(req);
    const r = await emergency.receiveWarning(req.body, p.actor).catch((err) => {
      // A refused warning is answered 4xx by the central handler and logged here with its reason.
      if (err instanceof CapError) req.log.warn({ code: err.code, reason: err.message }, 'warning refused');
      throw err;
    });
    req.log.info({ cap: r.identifier, msgType: r.msgType, decision: r.decision, duplicate: r.duplicate }, 'warning received');
    return reply.code(r.duplicate ? 200 : 202).send({
      identifier: r.identifier, sender: r.sender, msgType: r.msgType, status: r.status, duplicate: r.duplicate, decision: r.decision,
      mode: { mode: r.state.mode, level: r.state.level, epoch: r.state.epoch },
    });
  });

  app.get('/api/situation', {
    config: { roles: ['commander', 'admin', 'operator', 'verifier'] },
    schema: { summary: 'The command centre board: open emergency cases by deadline, overdue, counts by district and unit, gateways, water tiers', tags: ['emergency'], security: [{ bearer: [] }] },
  }, async (req) => {
    const t = now();
    const openEmergency = () => db.selectFrom('cases').where(OPEN_CASE_PREDICATE).where('emergency', '=', 1);
    const [open, overdue, byDistrict, byUnit, states, expired, units, warnings] = await Promise.all([
      openEmergency().selectAll().orderBy('deadline_at', 'asc').limit(BOARD_LIMIT).execute(),
      openEmergency().selectAll().where('deadline_at', '<', t).orderBy('deadline_at', 'asc').limit(BOARD_LIMIT).execute(),
      // County code: the first 6 digits of the component code (GB/T 30428.2).
      openEmergency().select([sql<string>`substr(component_code, 1, 6)`.as('k'), sql<number>`count(*)`.as('n')]).groupBy(sql`substr(component_code, 1, 6)`).execute(),
      openEmergency().select(['unit as k', sql<number>`count(*)`.as('n')]).groupBy('unit').execute(),
      db.selectFrom('device_state').select(['device', 'last_values']).execute(),
      emergency.expired(),
      // Every open case per unit (not only emergency ones): the board's duty list.
      db.selectFrom('cases').where(OPEN_CASE_PREDICATE)
        .select(['unit', sql<number>`count(*)`.as('open'), sql<number>`sum(emergency)`.as('emergency'),
          sql<number>`sum(case when state in (${sql.join(RUNNING_STATES)}) and deadline_at < ${t} then 1 else 0 end)`.as('overdue')])
        .groupBy('unit').execute(),
      recentWarnings(),
    ]);
    const counts = (rows: { k: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.k, Number(r.n)]));
    const unitCounts = new Map(units.map((r) => [r.unit, r]));
    // `class` (urgent 紧急) and `emergencyPeriod` (registered in or tightened by an emergency period) are
    // different things the board labels apart (docs/domain.md#emergency-mode).
    const asCase = (c: Record<string, any>) => ({
      id: c.id, device: c.device, hazard: c.hazard, severity: c.severity, state: c.state, unit: c.unit,
      class: c.class, emergencyPeriod: c.emergency_epoch == null ? null : Number(c.emergency_epoch), title: c.title, address: c.address ?? null,
      openedAt: iso(c.opened_at), deadline: iso(c.deadline_at), overdueByMs: Math.max(0, t - Number(c.deadline_at)), district: districtOfDevice().get(c.device) ?? 'unknown',
    });
    const status = emergency.status();

    const latest = new Map(states.map((s) => [s.device, JSON.parse(s.last_values) as Record<string, unknown>]));
    const waterTiers: Record<string, string[]> = {};
    for (const c of tierChecks()) {
      const v = latest.get(c.device)?.[c.point];
      (waterTiers[c.tier] ??= []);
      if (typeof v === 'number' && v > c.limit) waterTiers[c.tier].push(c.device);
    }
    return {
      mode: { mode: status.state.mode, level: status.state.level, since: isoOrNull(status.state.since), reason: status.state.reason },
      at: iso(t),
      openEmergencyCases: open.map(asCase),
      overdue: overdue.map(asCase),
      countsByDistrict: counts(byDistrict),
      countsByUnit: counts(byUnit),
      gateways: {
        acknowledged: status.gateways.acknowledged, missing: status.gateways.missing, lastAckAfterMs: status.gateways.lastAckAfterMs,
        // "n of N": the current mode command's acknowledgements over the gateways it went to.
        command: status.gateways.command?.mode ?? null, acknowledgedCount: status.gateways.acknowledged.length, total: status.gateways.total,
      },
      units: district.units.map((u) => {
        const c = unitCounts.get(u.id);
        return {
          id: u.id, name: u.name, dutyContact: u.dutyContact ?? null, onDuty: status.unitsOnDuty,
          openCases: Number(c?.open ?? 0), overdueCases: Number(c?.overdue ?? 0), emergencyCases: Number(c?.emergency ?? 0),
        };
      }),
      warnings: warnings.map((w) => ({ ...w, inForce: status.state.alerts.includes(w.identifier) })),
      unitsOnDuty: status.unitsOnDuty ? district.units.map((u) => ({ id: u.id, name: u.name, dutyContact: u.dutyContact ?? null })) : [],
      waterTiers,
      // Lines for the commander: a warning holding the mode expired (the mode stays; a human decides).
      notices: expired.map((w) => ({ kind: 'warning-expired', identifier: w.identifier, sender: w.sender, at: iso(w.expiredAt), message: w.message })),
    };
  });
}
