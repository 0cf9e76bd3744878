import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import type { EdgeHealth } from '../../lib/messages.ts';
import type { GatewayState } from '../../lib/messages.ts';
import { gatewayOf, type District, type Device as DistrictDevice } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { CloudErrors } from '../errors.ts';
import { principalOf, scopeUnit } from './auth.ts';
import { iso } from '../cases/index.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import { RUNNING_STATES } from '../workflow.ts';
import type { Database } from '../db/database.ts';
import type { DeviceStateTable } from '../db/schema.ts';
import type { Selectable } from 'kysely';
import * as S from './schemas.ts';
import type { Routing } from '../routing.ts';

export interface RouteDeps {
  database: Database;
  district: District;
  profiles: Map<string, Profile>;
  now: () => number;
  gatewayStates: ReadonlyMap<string, GatewayState>;
  /** The newest edge health per gateway, with the time it arrived. */
  gatewayHealth?: ReadonlyMap<string, { at: number; health: EdgeHealth }>;
  mqttStatus(): 'connected' | 'disconnected' | 'disabled';
  routing?: Routing;
  /** The Prometheus text of this cloud's counters (cloud/metrics.ts); no `/metrics` route when omitted. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

/** A device counts as offline when silent for this many poll intervals. */
export const OFFLINE_AFTER_POLLS = 3;

export function registerRoutes(root: FastifyInstance, deps: RouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, district, profiles, now } = deps;
  const db = database.db;
  const byId = new Map(district.devices.map((d) => [d.id, d]));

  app.get('/healthz', {
    config: { public: true },
    schema: { summary: 'Liveness and dependencies (no token needed)', tags: ['health'], security: [], response: { 200: S.Health, 503: S.Health } },
  }, async (_req, reply) => {
    let dbOk = true;
    try {
      await database.ping();
    } catch {
      dbOk = false;
    }
    const body = { status: dbOk ? 'ok' as const : 'degraded' as const, db: dbOk ? 'ok' as const : 'error' as const, mqtt: deps.mqttStatus() };
    return reply.code(dbOk ? 200 : 503).send(body);
  });

  const metrics = deps.metrics;
  if (metrics) {
    app.get('/metrics', {
      config: { roles: ['admin', 'operator'] },
      schema: {
        summary: 'Ingest counters in Prometheus text: readings and edge alarms by outcome, conflicts, rejections by reason, suppressed warnings',
        tags: ['health'], produces: ['text/plain'], response: { 200: { type: 'string' }, ...S.authErrors },
      },
    }, async (_req, reply) => {
      const m = await metrics();
      return reply.type(m.contentType).send(m.body);
    });
  }

  // ---- devices -------------------------------------------------------------------------------

  /** The gateway's last health report as it concerns one device: its slave's counters and breaker. */
  function healthOf(gateway: string, device: string): S.Device['health'] {
    const h = deps.gatewayHealth?.get(gateway);
    if (!h) return null;
    const slave = Object.values(h.health.buses).flatMap((b) => b.slaves).find((s) => s.device === device);
    return {
      reportedAt: iso(h.at),
      gatewayMode: h.health.mode,
      outboxDepth: h.health.outbox.depth,
      slave: slave ? {
        breaker: slave.breaker, ok: slave.ok, timeout: slave.timeout, crc: slave.crc, exception: slave.exception,
        wrongUnit: slave.wrongUnit, truncated: slave.truncated, consecutiveFaults: slave.consecutiveFaults, lastFault: slave.lastFault ?? null,
      } : null,
    };
  }

  function deviceJson(d: DistrictDevice, state: Selectable<DeviceStateTable> | undefined, openCases: number): S.Device {
    const profile = profiles.get(d.profile)!;
    const gateway = gatewayOf(district, d);
    const pollMs = d.pollMs ?? profile.pollMs;
    let status: S.Device['status'] = 'never-seen';
    if (state) {
      const gw = deps.gatewayStates.get(gateway);
      const silent = now() - Number(state.last_seen) > OFFLINE_AFTER_POLLS * pollMs;
      status = (gw && !gw.online) || silent ? 'offline' : 'online';
    }
    return {
      id: d.id,
      name: d.name,
      profile: d.profile,
      kind: profile.kind,
      componentCode: d.componentCode,
      location: { lat: d.lat, lon: d.lon, address: d.address ?? null },
      grid: d.grid ?? null,
      ownerUnit: d.ownerUnit,
      maintainerUnit: d.maintainerUnit,
      gateway,
      status,
      lastSeen: state ? iso(state.last_seen) : null,
      health: healthOf(gateway, d.id),
      latest: state ? { seq: Number(state.last_seq), ts: iso(state.last_ts), values: JSON.parse(state.last_values), quality: state.last_quality } : null,
      openCases,
    };
  }

  /** Open cases per device; a crew token counts only its own unit's (others' cases stay hidden). */
  async function openCaseCounts(unit: string | undefined, device?: string): Promise<Map<string, number>> {
    let q = db.selectFrom('cases').select(['device', sql<number>`count(*)`.as('n')]).where(OPEN_CASE_PREDICATE).groupBy('device');
    if (device) q = q.where('device', '=', device);
    if (unit !== undefined) q = q.where('unit', '=', unit);
    return new Map((await q.execute()).map((r) => [r.device, Number(r.n)]));
  }

  function deviceOr404(id: string): DistrictDevice {
    const d = byId.get(id);
    if (!d) throw new CsError(CloudErrors.DEVICE_NOT_FOUND, `no device "${id}"`);
    return d;
  }

  app.get('/api/devices', {
    schema: { summary: 'Every registered device with its latest values, status and open cases', tags: ['devices'], response: { 200: S.DeviceList, ...S.authErrors } },
  }, async (req) => {
    const [states, counts] = await Promise.all([db.selectFrom('device_state').selectAll().execute(), openCaseCounts(scopeUnit(principalOf(req)))]);
    const byDevice = new Map(states.map((s) => [s.device, s]));
    return { items: district.devices.map((d) => deviceJson(d, byDevice.get(d.id), counts.get(d.id) ?? 0)) };
  });

  app.get('/api/devices/:id', {
    schema: { summary: 'One device', tags: ['devices'], params: S.IdParams, response: { 200: S.Device, 404: S.ErrorReply, ...S.authErrors } },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const [state, counts] = await Promise.all([
      db.selectFrom('device_state').selectAll().where('device', '=', d.id).executeTakeFirst(),
      openCaseCounts(scopeUnit(principalOf(req)), d.id),
    ]);
    return deviceJson(d, state, counts.get(d.id) ?? 0);
  });

  app.get('/api/devices/:id/readings', {
    schema: {
      summary: 'Readings of a device, newest first (from inclusive, to exclusive, by measurement time)',
      tags: ['devices'], params: S.IdParams, querystring: S.ReadingQuery,
      response: { 200: S.ReadingList, 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const { from, to, limit } = req.query;
    const fromMs = from === undefined ? undefined : Date.parse(from);
    const toMs = to === undefined ? undefined : Date.parse(to);
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) {
      throw new CsError(CloudErrors.BAD_QUERY, `query parameter "from" (${from}) is after "to" (${to})`);
    }
    let q = db.selectFrom('readings').selectAll().where('device', '=', d.id);
    if (fromMs !== undefined) q = q.where('ts', '>=', fromMs);
    if (toMs !== undefined) q = q.where('ts', '<', toMs);
    const rows = await q.orderBy('ts', 'desc').orderBy('seq', 'desc').limit(limit).execute();
    return {
      device: d.id,
      items: rows.map((r) => ({
        gateway: r.gateway, seq: Number(r.seq), ts: iso(r.ts), receivedAt: iso(r.received_at),
        values: JSON.parse(r.values_json), quality: r.quality, historical: Number(r.historical) === 1,
      })),
    };
  });

  // ---- units ---------------------------------------------------------------------------------

  app.get('/api/units', {
    schema: {
      summary: 'Responsible units with open and overdue case counts; a crew token gets its own unit only',
      tags: ['units'], response: { 200: S.UnitList, ...S.authErrors },
    },
  }, async (req) => {
    const scope = scopeUnit(principalOf(req));
    let q = db.selectFrom('cases')
      .select(['unit', sql<number>`count(*)`.as('open'),
        sql<number>`sum(case when state in (${sql.join(RUNNING_STATES)}) and deadline_at < ${now()} then 1 else 0 end)`.as('overdue')])
      .where(OPEN_CASE_PREDICATE).groupBy('unit');
    if (scope !== undefined) q = q.where('unit', '=', scope);
    const counts = new Map((await q.execute()).map((r) => [r.unit, r]));
    return {
      items: district.units.filter((u) => scope === undefined || u.id === scope).map((u) => ({
        id: u.id, name: u.name, dutyContact: u.dutyContact ?? null,
        dutyLeader: deps.routing?.units[u.id]?.dutyLeader ?? null, members: deps.routing?.units[u.id]?.members ?? [],
        openCases: Number(counts.get(u.id)?.open ?? 0), overdueCases: Number(counts.get(u.id)?.overdue ?? 0),
      })),
    };
  });
}

