import type { FastifyInstance } from 'fastify';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import type { Logger } from '../../lib/log.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { Database } from '../db/database.ts';
import type { Routing } from '../routing.ts';
import { createRecheck } from './recheck.ts';
import { registerRegistryLogRoutes } from './log-routes.ts';
import { registerRegistryRoutes, type ProvisionHook, type RegistryRouteDeps } from './routes.ts';
import type { VersionSubscriber } from '../version-poll.ts';
import { createRegistry, DEFAULT_REGISTRY_POLL_MS, type GatewayConfig, type Registry, type RegistryListener, type RetiredDevice } from './service.ts';

export type { GatewayConfig, Registry, RegistryListener, RetiredDevice } from './service.ts';
export type { ProvisionHook, Provisioned } from './routes.ts';

/** The cloud's registry options (CloudOptions.registry). */
export interface RegistryOptions {
  /** How often each worker polls the registry's version for another worker's change (default 2000 ms; 0: never). */
  pollMs?: number;
  /**
   * Called after a gateway is stored by POST /api/registry/gateways: provisions its broker credential and
   * returns it with a ready edge config file; both are answered to the caller. A throw answers 502
   * CS_CLOUD_REGISTRY_PROVISION_FAILED (the gateway stays registered).
   */
  provision?: ProvisionHook;
  /** The last set-devices sent to a gateway's edge and its answer, shown by GET /api/registry/gateways/:id/config. */
  pushStatus?: RegistryRouteDeps['pushStatus'];
}

/** What the cloud gives others of its registry (Cloud.registry): the live view, one gateway, change events. */
export interface RegistryApi {
  /** The live District view (the same object the cloud's modules read). */
  district(): District;
  /** One gateway in service: its buses and devices (undefined when unknown or retired). */
  gateway(id: string): GatewayConfig | undefined;
  /** Told after each change, local or another worker's (seen within `pollMs`); returns an unsubscribe. */
  onChange(listener: RegistryListener): () => void;
  /** The registry's version (bumped by every change, the same on every worker once polled). */
  version(): number;
  /** Reads the database's version now and reloads when another worker changed the registry. */
  refresh(): Promise<boolean>;
}

/** Units routing rules and catalogue categories name (they cannot be retired). */
function unitsNamed(routing: Routing, catalogue: Catalogue | undefined): Map<string, string> {
  const m = new Map<string, string>();
  routing.rules.forEach((r, i) => m.set(r.unit, `routing rule ${i + 1}`));
  for (const u of Object.keys(routing.units)) if (!m.has(u)) m.set(u, 'the routing\'s units');
  for (const c of catalogue?.categories ?? []) if (c.routing.unit && !m.has(c.routing.unit)) m.set(c.routing.unit, `category ${c.code}`);
  return m;
}

/** Builds the registry (its view is what the cloud passes as `district`); `install` adds its routes. */
export function buildRegistry(deps: {
  database: Database; seed: District; profiles: Map<string, Profile>; now: () => number; logger: Logger;
  /** The case environment, read at each check (routing and catalogue change without a restart). */
  env: () => { routing: Routing; catalogue?: Catalogue }; options?: RegistryOptions;
}): {
  registry: Registry; api: RegistryApi; install(app: FastifyInstance): void; retired: { get: Registry['retired']; all: Registry['retiredAll'] };
  /** Brings the registry up to the database's version before a message is refused (cloud/registry/recheck.ts). */
  recheck(): Promise<void>;
  /** Its part in the cloud's version poll (cloud/version-poll.ts), every `pollMs`. */
  poll: VersionSubscriber;
} {
  const registry = createRegistry({
    database: deps.database, seed: deps.seed, profiles: deps.profiles, now: deps.now, logger: deps.logger,
    unitsInUse: () => unitsNamed(deps.env().routing, deps.env().catalogue),
  });
  return {
    registry,
    api: { district: () => registry.district, gateway: registry.gateway, onChange: registry.onChange, version: registry.version, refresh: registry.refresh },
    install: (app) => {
      registerRegistryRoutes(app, { registry, database: deps.database, logger: deps.logger, provision: deps.options?.provision, pushStatus: deps.options?.pushStatus });
      registerRegistryLogRoutes(app, { database: deps.database });
    },
    retired: { get: registry.retired, all: registry.retiredAll },
    recheck: createRecheck({ refresh: registry.refresh, logger: deps.logger }),
    poll: { name: 'registry', everyMs: deps.options?.pollMs ?? DEFAULT_REGISTRY_POLL_MS, onVersions: (v) => registry.onVersion(v.registry) },
  };
}
