import type { RetiredDevice } from '../registry/service.ts';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import type { EdgeHealth } from '../../lib/messages.ts';
import type { GatewayState } from '../../lib/messages.ts';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { principalOf, scopeUnit } from './auth.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import { RUNNING_STATES } from '../workflow.ts';
import type { Database } from '../db/database.ts';
import * as S from './schemas.ts';
import type { Routing } from '../routing.ts';
import type { RuleEngine } from '../rules.ts';
import type { ModeProvider } from '../mode.ts';
import { registerDeviceRoutes } from './device-routes.ts';
import { registerAuditRoutes } from './audit-routes.ts';
import { registerNotificationRoutes } from './notification-routes.ts';
import type { NotificationChannel, NotificationOutcome } from '../../lib/vocabulary.ts';

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
  /** The rules in force per device (status tiers, thresholds) and the mode choosing their limits. */
  engine: RuleEngine;
  mode: ModeProvider;
  /** The Prometheus text of this cloud's counters (cloud/metrics.ts); no `/metrics` route when omitted. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Counts a notification outcome (cloud/metrics.ts); no `POST /api/notifications/outcomes` when omitted. */
  notified?: (channel: NotificationChannel, outcome: NotificationOutcome) => void;
  /** How far back raw rows and minute rollups reach (the history picks its level by it); DEFAULT_RETENTION when omitted. */
  retention?: { rawDays: number; minuteDays: number };
  /** The registry's retired devices (cloud/registry/service.ts): their history stays readable. */
  retired?: { get(id: string): RetiredDevice | undefined; all(): RetiredDevice[] };
}


export function registerRoutes(root: FastifyInstance, deps: RouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { database, district, now } = deps;
  const db = database.db;

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

  registerDeviceRoutes(root, deps);
  registerAuditRoutes(root, deps);
  if (deps.notified) registerNotificationRoutes(root, deps.notified);

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

