import { stringify } from 'yaml';
import type { Bus, Device } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { ConfigError } from '../../lib/config.ts';
import { checkEdgeConfig, type EdgeConfig, type EdgeConfigInput } from '../../lib/edge-config.ts';
import { CloudErrors } from '../errors.ts';

/**
 * The edge's view of one gateway of the registry: its config file (given once, when the gateway is
 * created through the API) and the buses and devices a `set-devices` command carries afterwards
 * (docs/architecture.md#live-device-updates). Both are validated by the edge's own schema
 * (lib/edge-config.ts) before they leave the cloud.
 */

/** What the edges of this city connect to, as the edges reach it (README "Provisioning gateways"). */
export interface EdgeProvisioning {
  /** Broker URL, and further brokers of the cluster for failover. */
  mqtt: { url: string; urls?: string[] };
  /** Poll interval of a new gateway's devices without their own; default 1000 ms. */
  pollMs?: number;
}

/** A gateway with its buses and the devices on them (the registry's GatewayConfig). */
export interface GatewayDevices { gateway: { id: string }; buses: Bus[]; devices: Device[] }

export type EdgeBuses = Pick<EdgeConfigInput, 'buses' | 'devices'>;

/** The gateway's buses and in-service devices as the edge config writes them, in id order. */
export function edgeDevices(g: GatewayDevices): EdgeBuses {
  const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    buses: [...g.buses].sort(byId).map((b) => ({ id: b.id, host: b.host, port: b.port, timeoutMs: b.timeoutMs })),
    devices: [...g.devices].sort(byId).map((d) => ({ id: d.id, profile: d.profile, bus: d.bus, unitId: d.unitId, ...(d.pollMs !== undefined ? { pollMs: d.pollMs } : {}) })),
  };
}

/**
 * The config of a gateway's edge: identity, credential, brokers, buses and devices at `revision` (the
 * registry's version). Validated: throws ConfigError (CS_CLOUD_EDGE_CONFIG_INVALID, each key named) when the
 * registry holds something the edge would refuse, e.g. a bus on port 0.
 */
export function edgeConfigFor(
  g: GatewayDevices, credential: { username: string; password: string }, settings: EdgeProvisioning,
  profiles: Map<string, Profile>, revision: number,
): { input: EdgeConfigInput; config: EdgeConfig } {
  const input: EdgeConfigInput = {
    gateway: g.gateway.id,
    mqtt: { url: settings.mqtt.url, ...(settings.mqtt.urls?.length ? { urls: settings.mqtt.urls } : {}), username: credential.username, password: credential.password },
    pollMs: settings.pollMs ?? 1000,
    revision,
    ...edgeDevices(g),
  };
  const r = checkEdgeConfig(structuredClone(input), profiles);
  if (!r.ok) throw new ConfigError(CloudErrors.EDGE_CONFIG_INVALID, `(edge config of gateway ${g.gateway.id})`, r.problems);
  const config = r.value;
  return { input, config };
}

/** The config file's text: YAML with a header saying what it is and how to run it. */
export function edgeConfigYaml(input: EdgeConfigInput, at: Date): string {
  return [
    `# Edge config of gateway ${input.gateway}, written by the CitySteward cloud at ${at.toISOString()} (registry revision ${input.revision ?? 0}).`,
    '# It holds the gateway\'s broker password (shown once): keep it mode 0600. Run: citysteward edge --config FILE --data-dir DIR',
    '# Devices added, moved or retired later reach the running edge by the set-devices command (README "Provisioning gateways").',
    stringify(input),
  ].join('\n');
}
