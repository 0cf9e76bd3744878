import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import type { EdgeHealth } from '../../lib/messages.ts';
import type { Device as DistrictDevice } from '../../devices/district.ts';
import { indexOf } from '../registry/view.ts';
import { limitOf, type Rule, type ThresholdRule } from '../../devices/rules.ts';
import { iso } from '../cases/index.ts';
import * as S from './schemas.ts';
import * as D from './device-schemas.ts';
import type { RouteDeps } from './routes.ts';

/** The fault counters of a slave's health, by name (lib/messages.ts SlaveHealthSchema). */
const FAULTS = ['timeout', 'crc', 'exception', 'wrongUnit', 'truncated', 'badFrame', 'busDown', 'decode'] as const;

/** One device's slave in a gateway's health report, if the gateway polls it. */
export function slaveOf(h: EdgeHealth, device: string): EdgeHealth['buses'][string]['slaves'][number] | undefined {
  for (const b of Object.values(h.buses)) {
    const s = b.slaves.find((x) => x.device === device);
    if (s) return s;
  }
  return undefined;
}

const thresholdLine = (r: ThresholdRule, emergency: boolean) => ({
  id: r.id, hazard: r.hazard, point: r.point, op: r.op, value: limitOf(r, emergency), severity: r.severity, class: r.class,
});

/**
 * A device's gateway health and thresholds, and the gateways: from the gateways' birth/death
 * certificates (`cs/v1/{gw}/state`), their latest health reports (`cs/v1/{gw}/health`, kept in
 * memory by the cloud: after a restart none until the next report) and the readings stored.
 */
export function registerGatewayRoutes(root: FastifyInstance, deps: RouteDeps, deviceOr404: (id: string) => DistrictDevice): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, district, now, engine, mode } = deps;
  const db = database.db;

  /** Per gateway, the measurement time and arrival of the newest reading stored from it. */
  async function newestReadings(gateway?: string): Promise<Map<string, { ts: number; seen: number }>> {
    let q = db.selectFrom('device_state').select(['gateway', sql<number>`max(last_ts)`.as('ts'), sql<number>`max(last_seen)`.as('seen')]).groupBy('gateway');
    if (gateway) q = q.where('gateway', '=', gateway);
    return new Map((await q.execute()).map((r) => [r.gateway, { ts: Number(r.ts), seen: Number(r.seen) }]));
  }

  function gatewayView(id: string, newest: { ts: number; seen: number } | undefined) {
    const state = deps.gatewayStates.get(id);
    const health = deps.gatewayHealth?.get(id);
    const seen = [health?.at, newest?.seen, state ? Date.parse(state.ts) : undefined].filter((x): x is number => x !== undefined && Number.isFinite(x));
    return {
      id,
      online: state?.online === true,
      lastSeen: seen.length ? iso(Math.max(...seen)) : null,
      mode: health?.health.mode ?? (typeof state?.mode === 'string' ? state.mode : null),
      outboxDepth: health ? health.health.outbox.depth : null,
      health,
    };
  }

  app.get('/api/devices/:id/health', {
    schema: {
      summary: 'A device\'s gateway (online, last seen, poll mode), its Modbus breaker and fault counters, and the gateway\'s outbox, from the latest health report',
      tags: ['devices'], params: S.IdParams, response: { 200: D.DeviceHealth, 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const gw = indexOf(district).gatewayOf.get(d.id) ?? deps.retired?.get(d.id)?.gateway ?? '';
    const newest = (await newestReadings(gw)).get(gw);
    const v = gatewayView(gw, newest);
    const slave = v.health ? slaveOf(v.health.health, d.id) : undefined;
    const depth = v.outboxDepth;
    return {
      device: d.id,
      gateway: { id: v.id, online: v.online, lastSeen: v.lastSeen, mode: v.mode },
      reportedAt: v.health ? iso(v.health.at) : null,
      breaker: slave?.breaker ?? null,
      faults: slave ? Object.fromEntries(FAULTS.map((f) => [f, slave[f]])) : {},
      consecutiveFaults: slave?.consecutiveFaults ?? null,
      lastFault: slave?.lastFault ?? null,
      outbox: { depth, oldestAgeMs: depth && newest ? Math.max(0, now() - newest.ts) : null },
    };
  });

  app.get('/api/gateways', {
    config: { roles: ['operator', 'commander', 'admin'] },
    schema: {
      summary: 'Edge gateways: online, last seen, poll mode and outbox depth (operator, commander, admin)',
      tags: ['devices'], response: { 200: D.GatewayList, ...S.authErrors },
    },
  }, async () => {
    const newest = await newestReadings();
    const counts = new Map<string, number>();
    for (const gw of indexOf(district).gatewayOf.values()) counts.set(gw, (counts.get(gw) ?? 0) + 1);
    return district.gateways.map((g) => {
      const { health: _h, ...v } = gatewayView(g.id, newest.get(g.id));
      return { ...v, name: g.name, devices: counts.get(g.id) ?? 0 };
    });
  });

  app.get('/api/devices/:id/thresholds', {
    schema: {
      summary: 'The threshold rules in force for a device (its kind\'s with its overrides), at their normal and emergency limits, and its plausible ranges',
      tags: ['devices'], params: S.IdParams, response: { 200: D.Thresholds, 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const rules: Rule[] = engine.rules(d.profile, d.id);
    const thresholds = rules.filter((r): r is ThresholdRule => r.kind === 'threshold');
    return {
      device: d.id,
      inForce: mode.emergency() ? 'emergency' as const : 'normal' as const,
      normal: thresholds.map((r) => thresholdLine(r, false)),
      emergency: thresholds.map((r) => thresholdLine(r, true)),
      ranges: rules.flatMap((r) => (r.kind === 'range' ? [{ id: r.id, point: r.point, min: r.min, max: r.max }] : [])),
    };
  });
}
