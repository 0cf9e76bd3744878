import { CsError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { CloudErrors } from '../errors.ts';
import type { GatewayState } from '../../lib/messages.ts';
import type { Profile } from '../../devices/profile.ts';
import { brokerAdminCredentials, type GatewayCredentials } from './credentials.ts';
import { edgeConfigFor, edgeConfigYaml, type EdgeProvisioning, type GatewayDevices } from './edge-config.ts';
import { createDevicePush, type PushStatus } from './push.ts';

export { brokerAdminCredentials, storeCredentials, type GatewayCredentials } from './credentials.ts';
export type { EdgeProvisioning } from './edge-config.ts';

/**
 * Provisioning gateways (README "Provisioning gateways", docs/architecture.md#provisioning): a gateway
 * created through the registry API gets its broker credential and a ready edge config file in the answer;
 * afterwards each change to its buses or devices reaches its running edge as `set-devices` (push.ts).
 */
export interface ProvisioningOptions {
  /** How gateway credentials are made: brokerAdminCredentials (separate brokers) or storeCredentials (the demo's in-process broker). */
  credentials: GatewayCredentials;
  /** The brokers the edges connect to and a new gateway's poll interval. */
  edge: EdgeProvisioning;
}

/** The registry as provisioning needs it (cloud/registry: RegistryApi). */
export interface ProvisionedRegistry {
  gateway(id: string): GatewayDevices | undefined;
  version(): number;
  onChange(listener: (change: { gateways: string[] }) => void): () => void;
}

export interface Provisioning {
  /** The registry's provision hook: credential and edge config file (YAML) of a gateway just stored. */
  provision(gatewayId: string): Promise<{ credential: { username: string; password: string }; edgeConfig: string }>;
  /** A gateway's retained state (the MQTT subscriber's onState). */
  onState(gateway: string, state: GatewayState | undefined): void;
  /** A command acknowledgement (the MQTT subscriber's onAck). */
  onAck(gateway: string, ack: { id?: unknown; outcome?: unknown; message?: unknown }): void;
  /** The last set-devices per gateway and its edge's answer. */
  status(): Record<string, PushStatus>;
  /** Stops listening to the registry. */
  stop(): void;
}

export interface ProvisioningDeps {
  registry: ProvisionedRegistry;
  profiles: Map<string, Profile>;
  /** Publishes as the cloud's service identity (QoS 1). */
  publish(topic: string, payload: string): Promise<void>;
  now: () => number;
  logger: Logger;
}

export function buildProvisioning(o: ProvisioningOptions, deps: ProvisioningDeps): Provisioning {
  const log = deps.logger;
  const push = createDevicePush({
    gateway: (id) => deps.registry.gateway(id), version: () => deps.registry.version(), profiles: deps.profiles,
    publish: deps.publish, now: deps.now, logger: log,
  });
  const unsubscribe = deps.registry.onChange(({ gateways }) => {
    push.changed(gateways);
    // A gateway the registry no longer has in service was retired: its credential goes with it.
    for (const gw of gateways) {
      if (deps.registry.gateway(gw)) continue;
      o.credentials.revoke(gw).then(
        () => log.info({ gateway: gw }, 'retired gateway: broker credential revoked'),
        (err: Error) => log.error({ gateway: gw, err: err.message }, 'retired gateway: broker credential NOT revoked; revoke it with citysteward credential revoke'),
      );
    }
  });

  return {
    async provision(gatewayId) {
      const g = deps.registry.gateway(gatewayId) ?? { gateway: { id: gatewayId }, buses: [], devices: [] };
      const credential = await o.credentials.create(gatewayId);
      const { input } = edgeConfigFor(g, credential, o.edge, deps.profiles, deps.registry.version());
      log.info({ gateway: gatewayId }, 'gateway provisioned: broker credential and edge config');
      return { credential, edgeConfig: edgeConfigYaml(input, new Date(deps.now())) };
    },
    onState: (gw, state) => push.state(gw, state),
    onAck: (gw, ack) => push.ack(gw, ack),
    status: () => push.status(),
    stop: unsubscribe,
  };
}

/** The `provisioning` section of the cloud's config file, resolved (cli/config.ts CloudServiceConfig). */
export function provisioningFromConfig(
  cfg: { brokerAdmin: { urls: string[]; token?: string; timeoutMs?: number }; edge: EdgeProvisioning },
  env: NodeJS.ProcessEnv, logger: Logger,
): ProvisioningOptions {
  const token = cfg.brokerAdmin.token ?? env.CS_GATEWAY_ADMIN_TOKEN;
  if (!token) throw new CsError(CloudErrors.CONFIG_INVALID, 'provisioning.brokerAdmin.token: the brokers\' admin token is needed (or CS_GATEWAY_ADMIN_TOKEN in the environment)');
  return { credentials: brokerAdminCredentials({ urls: cfg.brokerAdmin.urls, token, timeoutMs: cfg.brokerAdmin.timeoutMs, logger }), edge: cfg.edge };
}

/**
 * The cloud's provisioning as app.ts wires it: the registry's provision hook is needed before the registry is
 * built, and the registry and the MQTT publish it needs exist only after; `attach` joins them. Without
 * options every part is a no-op and `hook` is undefined (gateways are created without credentials).
 */
export function lateProvisioning(o: ProvisioningOptions | undefined, base: Omit<ProvisioningDeps, 'registry' | 'publish'>): {
  hook: ((gatewayId: string) => ReturnType<Provisioning['provision']>) | undefined;
  attach(registry: ProvisionedRegistry, publish: (topic: string, payload: string) => void): void;
  onState: Provisioning['onState'];
  onAck: Provisioning['onAck'];
  pushStatus(gateway: string): PushStatus | undefined;
  stop(): void;
} {
  let p: Provisioning | undefined;
  return {
    hook: o && ((id) => {
      if (!p) throw new CsError(CloudErrors.PROVISION_FAILED, 'provisioning is not attached to the registry yet');
      return p.provision(id);
    }),
    attach(registry, publish) {
      if (o) p = buildProvisioning(o, { ...base, registry, publish: async (topic, payload) => publish(topic, payload) });
    },
    onState: (gw, state) => p?.onState(gw, state),
    onAck: (gw, ack) => p?.onAck(gw, ack),
    pushStatus: (gw) => p?.status()[gw],
    stop: () => p?.stop(),
  };
}
