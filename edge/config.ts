import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { checkEdgeConfig, crossCheckEdgeConfig, deviceKinds, EdgeConfig } from '../lib/edge-config.ts';
import type { District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import { defaultRuleSet, loadRuleSet, type RuleSet } from '../devices/rules.ts';
import { EdgeErrors } from './errors.ts';

// The schema of an edge config (shared with the cloud, which writes them for gateways it provisions).
export * from '../lib/edge-config.ts';

/** Validates an edge config object (defaults applied) and its references; throws ConfigError naming `file`. */
export function validateEdgeConfig(value: unknown, profiles: Map<string, Profile>, file = '(inline)'): EdgeConfig {
  const r = checkEdgeConfig(value, profiles);
  if (!r.ok) throw new ConfigError(EdgeErrors.CONFIG_INVALID, file, r.problems);
  return r.value;
}

/**
 * Reads a YAML edge config, validates it and checks that every profile and bus it names exists;
 * a rule-set file it names is resolved against the config's directory and checked now.
 */
export function loadEdgeConfig(file: string, profiles: Map<string, Profile>): EdgeConfig {
  const cfg = loadConfig(file, EdgeConfig);
  const problems = crossCheckEdgeConfig(cfg, profiles);
  if (problems.length) throw new ConfigError(EdgeErrors.CONFIG_INVALID, file, problems);
  if (typeof cfg.rules === 'string' && !isAbsolute(cfg.rules)) cfg.rules = resolve(dirname(resolve(file)), cfg.rules);
  edgeRuleSet(cfg, profiles);
  return cfg;
}

/** The rule set the edge judges by: the file or inline set of `rules`, else the shared defaults. */
export function edgeRuleSet(cfg: EdgeConfig, profiles: Map<string, Profile>): RuleSet {
  if (cfg.rules === undefined) return defaultRuleSet(profiles);
  if (typeof cfg.rules === 'string') return loadRuleSet(cfg.rules, profiles, deviceKinds(cfg));
  return cfg.rules as RuleSet;
}

/**
 * The edge config of one gateway of a district: its buses and the devices on them.
 * `busPorts` overrides bus ports (the demo, where simulators bind port 0 and report the port they got).
 * The result is validated; profile references are checked by `validateEdgeConfig` when profiles are given.
 */
export function edgeConfigFromDistrict(
  district: District,
  gatewayId: string,
  mqtt: { url: string; urls?: string[]; username: string; password: string; keepaliveS?: number },
  busPorts?: Map<string, number>,
  profiles?: Map<string, Profile>,
): EdgeConfig {
  const where = `(district "${district.name}", gateway ${gatewayId})`;
  if (!district.gateways.some((g) => g.id === gatewayId)) {
    throw new ConfigError(EdgeErrors.CONFIG_INVALID, where, [
      { key: 'gateway', message: `unknown gateway "${gatewayId}" (gateways: ${district.gateways.map((g) => g.id).join(', ')})` },
    ]);
  }
  const buses = district.buses.filter((b) => b.gateway === gatewayId);
  const busIds = new Set(buses.map((b) => b.id));
  const cfg = {
    gateway: gatewayId,
    mqtt: { ...mqtt },
    pollMs: 1000,
    buses: buses.map((b) => ({ id: b.id, host: b.host, port: busPorts?.get(b.id) ?? b.port, timeoutMs: b.timeoutMs })),
    devices: district.devices
      .filter((d) => busIds.has(d.bus))
      .map((d) => ({ id: d.id, profile: d.profile, bus: d.bus, unitId: d.unitId, ...(d.pollMs !== undefined ? { pollMs: d.pollMs } : {}) })),
  };
  // With no profiles at hand, check everything but the profile names.
  const known = profiles ?? new Map(cfg.devices.map((d) => [d.profile, undefined as unknown as Profile]));
  return validateEdgeConfig(cfg, known, where);
}
