import { derive } from '../registry/view.ts';
import type { FastifyInstance } from 'fastify';
import type { District } from '../../devices/district.ts';
import type { Logger } from '../../lib/log.ts';
import type { CaseEnv } from '../cases/index.ts';
import type { Database } from '../db/database.ts';
import type { EventBus } from '../events.ts';
import { DEMO_CATALOGUE } from '../catalogue/index.ts';
import { catalogueServices, citizenRegistrar } from './bridge.ts';
import { createKeyStore } from './keys.ts';
import { registerCitizenReportRoutes } from './operator-routes.ts';
import { createReportStore } from './reports.ts';
import { open311Routes } from './routes.ts';

/** Citizen reports (docs/architecture.md#open311): the Open311 GeoReport v2 routes and the operators' acceptance. */
export async function installOpen311(app: FastifyInstance, deps: {
  database: Database; district: District; env: CaseEnv; events: EventBus; now: () => number; logger: Logger;
  rate?: { requestsPerSecond: number; burst: number }; clock?: () => number;
}): Promise<void> {
  const reports = createReportStore(deps.database, deps.now);
  // The services follow the catalogue in force (an admin may change it at runtime: cloud/config/).
  let built: { from: unknown; services: ReturnType<typeof catalogueServices> } | undefined;
  const current = () => {
    const c = deps.env.catalogue ?? DEMO_CATALOGUE;
    if (built?.from !== c) built = { from: c, services: catalogueServices(c) };
    return built.services;
  };
  const services = { list: () => current().list(), get: (code: string) => current().get(code) };
  const names = derive(() => deps.district.units, (units) => new Map(units.map((u) => [u.id, u.name])));
  const unitName = (id: string) => names().get(id) ?? id;
  await app.register(async (scope) => open311Routes(scope, {
    reports, keys: createKeyStore(deps.database, deps.now), services, unitName, now: deps.now, logger: deps.logger, rate: deps.rate, clock: deps.clock,
  }));
  registerCitizenReportRoutes(app, { reports, services, unitName, register: citizenRegistrar(deps.env), events: deps.events, db: deps.database.db });
}
