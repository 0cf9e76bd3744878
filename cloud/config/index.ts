import type { FastifyInstance } from 'fastify';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { CsError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { Database } from '../db/database.ts';
import { CloudErrors } from '../errors.ts';
import { DEFAULT_ESCALATION, type EscalationPolicy } from '../escalation.ts';
import type { EmergencyConfig } from '../emergency/config.ts';
import type { Runtime } from './apply.ts';
import { checkDocument, CONFIG_KINDS, type ConfigDocs, type ConfigKind } from './kinds.ts';
import { configRoutes } from './routes.ts';
import { createConfigService, type ConfigService } from './service.ts';

export { CONFIG_KINDS, type ConfigKind, type ConfigDocs } from './kinds.ts';
export type { ConfigService } from './service.ts';
export { startingConfig } from './initial.ts';
/** How often a worker reads the configuration versions another worker may have changed (`configSyncMs`). */
export const DEFAULT_CONFIG_SYNC_MS = 2000;

export interface InstallConfigDeps extends Runtime {
  database: Database;
  district: District;
  profiles: Map<string, Profile>;
  /** The cloud's options for the two kinds without a running part to ask when it is turned off. */
  escalation?: Partial<EscalationPolicy> | false;
  emergencyConfig?: EmergencyConfig | false;
  now: () => number;
  logger: Logger;
}

/**
 * Configuration as data in the cloud (cloud/app.ts calls this once the parts are built): the values
 * in force now become each kind's initial document (checked whole, as any change), the service is
 * built and its routes registered. `start` seeds or reconciles the database; the cloud's version poll calls `sync`.
 */
export function installConfig(app: FastifyInstance, deps: InstallConfigDeps): ConfigService {
  const emergency = deps.emergencyConfig || {};
  const offered: Record<ConfigKind, unknown> = {
    rules: deps.engine.ruleSet(),
    catalogue: deps.env.catalogue,
    routing: deps.env.routing,
    calendar: deps.env.calendar.data,
    escalation: deps.escalator?.policy() ?? { ...DEFAULT_ESCALATION, ...(deps.escalation || {}) },
    emergency: deps.emergency?.settings() ?? {
      policy: emergency.policy ?? {}, ...(emergency.fast ? { fast: emergency.fast } : {}),
      ...(emergency.retryMs !== undefined ? { retryMs: emergency.retryMs } : {}), tightenOpenCases: emergency.tightenOpenCases ?? true,
    },
  };
  const ctx = { district: deps.district, profiles: deps.profiles };
  const initial = {} as Record<ConfigKind, unknown>;
  for (const kind of CONFIG_KINDS) {
    const r = checkDocument(kind, offered[kind], ctx);
    if (!r.ok) throw new CsError(CloudErrors.CONFIG_INVALID, `${kind} invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { kind, problems: r.problems });
    initial[kind] = r.value;
  }
  const service = createConfigService({
    database: deps.database, runtime: deps, ctx, initial: initial as ConfigDocs, now: deps.now, logger: deps.logger,
  });
  configRoutes(app, { config: service });
  return service;
}
