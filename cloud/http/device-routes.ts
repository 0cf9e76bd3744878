import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { sql, type Selectable } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { severityRank, type DeviceStatus, type Severity } from '../../lib/vocabulary.ts';
import { districtOf, type Device as DistrictDevice } from '../../devices/district.ts';
import { derive, indexOf } from '../registry/view.ts';
import { devicePage } from './device-page.ts';
import { CloudErrors } from '../errors.ts';
import { judgeValues } from '../rules.ts';
import { principalOf, scopeUnit } from './auth.ts';
import { iso } from '../cases/index.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import { historyBuckets, planHistory } from '../db/rollup-buckets.ts';
import { DEFAULT_RETENTION } from '../reading-retention.ts';
import type { DeviceStateTable } from '../db/schema.ts';
import * as S from './schemas.ts';
import * as D from './device-schemas.ts';
import type { RouteDeps } from './routes.ts';
import { registerGatewayRoutes, slaveOf } from './gateway-routes.ts';

/** A device's link counts as offline when silent for this many poll intervals (the `link` field). */
export const OFFLINE_AFTER_POLLS = 3;

/** Without `from`, a bucketed history covers this long before `to`. */
const DEFAULT_SPAN_MS = 24 * 3_600_000;

/**
 * The operator's device data (README "The API"): the list with filters, status and tier, one device,
 * its history raw or in buckets, its gateway's health, its thresholds, and the gateways. Devices are
 * visible to every role; open-case counts are the caller's (a crew sees only its unit's cases).
 */
export function registerDeviceRoutes(root: FastifyInstance, deps: RouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, district, profiles, now, engine, mode } = deps;
  const db = database.db;
  // The live registry (cloud/registry/view.ts): in service, else retired (history readable).
  const byId = { get: (id: string): DistrictDevice | undefined => indexOf(district).device.get(id) ?? deps.retired?.get(id)?.device };
  const gatewayOf = (_: unknown, d: DistrictDevice): string => indexOf(district).gatewayOf.get(d.id) ?? deps.retired?.get(d.id)?.gateway ?? '';
  const sorted = derive(() => district.devices, (devs) => [...devs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  const profileOf = (d: DistrictDevice) => profiles.get(d.profile)!;
  const rulesOf = (d: DistrictDevice) => engine.rules(d.profile, d.id);
  const silenceOf = (d: DistrictDevice) => rulesOf(d).find((r) => r.kind === 'silence');

  /** The gateway's last health report as it concerns one device: its slave's counters and breaker. */
  function healthOf(gateway: string, device: string): S.Device['health'] {
    const h = deps.gatewayHealth?.get(gateway);
    if (!h) return null;
    const slave = slaveOf(h.health, device);
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

  /** Live facts the list needs beyond the device's own row: active alarms (not the no-data one) and the mode. */
  interface Live { alarmed: Set<string>; emergency: boolean; at: number }

  async function live(device?: string): Promise<Live> {
    let q = db.selectFrom('alarms').select(['device', 'hazard']).where('cleared_at', 'is', null);
    if (device) q = q.where('device', '=', device);
    const rows = await q.execute();
    // The no-data alarm is the silence rule's own: it shows as `silent`, not `alarm`.
    const alarmed = new Set(rows.filter((r) => { const d = byId.get(r.device); return d && r.hazard !== silenceOf(d)?.hazard; }).map((r) => r.device));
    return { alarmed, emergency: mode.emergency(), at: now() };
  }

  /** docs/domain.md#sensors: offline (its gateway), silent (past its no-data rule, as the case clock judges), alarm, normal. */
  function statusOf(d: DistrictDevice, state: Selectable<DeviceStateTable> | undefined, l: Live): DeviceStatus {
    const gw = deps.gatewayStates.get(gatewayOf(district, d));
    if (gw && !gw.online) return 'offline';
    if (!state) return 'silent';
    const pollMs = d.pollMs ?? profileOf(d).pollMs;
    const afterPolls = silenceOf(d)?.afterPolls ?? OFFLINE_AFTER_POLLS;
    if (l.at - Number(state.last_seen) > afterPolls * pollMs) return 'silent';
    return l.alarmed.has(d.id) ? 'alarm' : 'normal';
  }

  /** The highest severity the latest values breach under the thresholds in force (range rules are not tiers). */
  function tierOf(d: DistrictDevice, state: Selectable<DeviceStateTable> | undefined, l: Live): Severity | null {
    if (!state) return null;
    let top: Severity | null = null;
    for (const b of judgeValues(rulesOf(d), JSON.parse(state.last_values), l.emergency)) {
      if (b.op === 'range') continue;
      if (top === null || severityRank(b.severity) > severityRank(top)) top = b.severity;
    }
    return top;
  }

  function deviceJson(d: DistrictDevice, state: Selectable<DeviceStateTable> | undefined, openCases: number, l: Live): S.Device {
    const profile = profileOf(d);
    const gateway = gatewayOf(district, d);
    const pollMs = d.pollMs ?? profile.pollMs;
    let link: S.Device['link'] = 'never-seen';
    if (state) {
      const gw = deps.gatewayStates.get(gateway);
      const silent = l.at - Number(state.last_seen) > OFFLINE_AFTER_POLLS * pollMs;
      link = (gw && !gw.online) || silent ? 'offline' : 'online';
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
      district: districtOf(d),
      status: statusOf(d, state, l),
      tier: tierOf(d, state, l),
      link,
      lastSeen: state ? iso(state.last_seen) : null,
      health: healthOf(gateway, d.id),
      ...(deps.retired?.get(d.id) && !indexOf(district).device.has(d.id) ? { retiredAt: iso(deps.retired.get(d.id)!.retiredAt) } : {}),
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
    schema: {
      summary: 'Devices with latest values, status (normal, alarm, silent, offline), tier, district and open cases; filtered by q, kind, status, unit, district, hasOpenCases',
      tags: ['devices'], querystring: D.DeviceQuery, response: { 200: S.DeviceList, ...S.authErrors },
    },
  }, async (req) => {
    const f = req.query;
    const needle = f.q?.toLowerCase();
    const match = (d: DistrictDevice) =>
      (needle === undefined || [d.id, d.name, d.address ?? '', d.componentCode].some((x) => x.toLowerCase().includes(needle)))
      && (f.kind === undefined || profileOf(d).kind === f.kind)
      && (f.unit === undefined || d.ownerUnit === f.unit || d.maintainerUnit === f.unit)
      && (f.district === undefined || districtOf(d) === f.district)
      && (f.gateway === undefined || gatewayOf(district, d) === f.gateway)
      && (f.profile === undefined || d.profile === f.profile);
    const pool = f.retired ? (deps.retired?.all() ?? []).map((r) => r.device) : sorted();
    // Status and open cases are live: with those filters every candidate's state is read; else only the page's.
    const live1 = f.status !== undefined || f.hasOpenCases !== undefined;
    const [counts, l] = await Promise.all([openCaseCounts(scopeUnit(principalOf(req))), live()]);
    const states = live1 || f.limit === undefined ? await db.selectFrom('device_state').selectAll().execute() : undefined;
    const byDevice = new Map((states ?? []).map((s) => [s.device, s]));
    const json = (d: DistrictDevice) => deviceJson(d, byDevice.get(d.id), counts.get(d.id) ?? 0, l);
    const keep = (j: S.Device) => (f.status === undefined || j.status === f.status) && (f.hasOpenCases === undefined || (j.openCases > 0) === f.hasOpenCases);
    if (f.limit === undefined) return { items: pool.filter(match).map(json).filter(keep) };
    const page = devicePage(pool, f.cursor, f.limit, (d) => match(d) && (!live1 || keep(json(d))));
    if (!states && page.items.length) {
      for (const s of await db.selectFrom('device_state').selectAll().where('device', 'in', page.items.map((d) => d.id)).execute()) byDevice.set(s.device, s);
    }
    return { items: page.items.map(json), nextCursor: page.nextCursor };
  });

  app.get('/api/devices/:id', {
    schema: { summary: 'One device', tags: ['devices'], params: S.IdParams, response: { 200: S.Device, 404: S.ErrorReply, ...S.authErrors } },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const [state, counts, l] = await Promise.all([
      db.selectFrom('device_state').selectAll().where('device', '=', d.id).executeTakeFirst(),
      openCaseCounts(scopeUnit(principalOf(req)), d.id),
      live(d.id),
    ]);
    return deviceJson(d, state, counts.get(d.id) ?? 0, l);
  });

  app.get('/api/devices/:id/readings', {
    schema: {
      summary: 'Readings of a device, newest first (from inclusive, to exclusive, by measurement time); with buckets=N or step=ms, min/max/mean/count per numeric point per bucket',
      tags: ['devices'], params: S.IdParams, querystring: D.HistoryQuery,
      response: { 200: Type.Union([S.ReadingList, D.ReadingSeries]), 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req) => {
    const d = deviceOr404(req.params.id);
    const { from, to, limit, buckets, step } = req.query;
    let fromMs = from === undefined ? undefined : Date.parse(from);
    let toMs = to === undefined ? undefined : Date.parse(to);
    if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) {
      throw new CsError(CloudErrors.BAD_QUERY, `query parameter "from" (${from}) is after "to" (${to})`);
    }
    if (buckets !== undefined || step !== undefined) {
      if (buckets !== undefined && step !== undefined) throw new CsError(CloudErrors.BAD_QUERY, 'give "buckets" or "step", not both');
      toMs ??= now();
      fromMs ??= toMs - DEFAULT_SPAN_MS;
      if (fromMs >= toMs) throw new CsError(CloudErrors.BAD_QUERY, `an aggregated history needs "from" before "to" (from ${iso(fromMs)}, to ${iso(toMs)})`);
      if (buckets !== undefined && buckets > D.MAX_BUCKETS) throw new CsError(CloudErrors.BAD_QUERY, `query parameter "buckets" (${buckets}) is above the cap of ${D.MAX_BUCKETS}`);
      const stepMs = step ?? Math.max(1, Math.ceil((toMs - fromMs) / buckets!));
      const n = Math.ceil((toMs - fromMs) / stepMs);
      if (n > D.MAX_BUCKETS) throw new CsError(CloudErrors.BAD_QUERY, `query parameter "step" (${stepMs} ms) makes ${n} buckets over this span, above the cap of ${D.MAX_BUCKETS}`);
      const points = profileOf(d).points.filter((p) => p.type !== 'bits' && p.type !== 'string').map((p) => p.key);
      // Raw rows, minute or hour rollups; on a rollup level the step and span are those of the answer.
      const plan = planHistory({ from: fromMs, to: toMs, stepMs, now: now(), maxBuckets: D.MAX_BUCKETS }, deps.retention ?? DEFAULT_RETENTION);
      const stats = await historyBuckets(database, plan, { device: d.id, points });
      const series = Object.fromEntries(Object.entries(stats).map(([p, list]) => [p, list.map((b) => ({ ...b, t: iso(b.t) }))]));
      return { device: d.id, from: iso(plan.from), to: iso(plan.to), stepMs: plan.stepMs, series };
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

  registerGatewayRoutes(root, deps, deviceOr404);
}
