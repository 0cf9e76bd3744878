import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { check, type SchemaProblem } from '../lib/schema.ts';
import { ID_PATTERN } from '../lib/topics.ts';
import type { District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import { EdgeErrors } from './errors.ts';

/**
 * The config of one edge gateway: who it is on the broker, and which Modbus buses and devices it polls.
 * A bus is one Modbus TCP endpoint (one connection per host and port, DESIGN.md section 7) that
 * serves several unit ids. A device's poll interval is its own `pollMs`, else the gateway's `pollMs`.
 */

const Id = Type.String({ pattern: ID_PATTERN });

export const EdgeMqtt = Type.Object({
  /** Broker URL, e.g. `mqtt://127.0.0.1:1884`. */
  url: Type.String({ minLength: 1 }),
  username: Type.String({ minLength: 1 }),
  password: Type.String(),
  keepaliveS: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
}, { additionalProperties: false });
export type EdgeMqtt = Static<typeof EdgeMqtt>;

export const EdgeBus = Type.Object({
  id: Id,
  host: Type.String({ minLength: 1, default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  /** Per-request timeout; also bounds the connect. */
  timeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
}, { additionalProperties: false });
export type EdgeBus = Static<typeof EdgeBus>;

export const EdgeDevice = Type.Object({
  id: Id,
  /** A profile id (devices/profiles). */
  profile: Type.String({ minLength: 1 }),
  /** A bus id of this config. */
  bus: Id,
  unitId: Type.Integer({ minimum: 1, maximum: 255 }),
  pollMs: Type.Optional(Type.Integer({ minimum: 100 })),
}, { additionalProperties: false });
export type EdgeDevice = Static<typeof EdgeDevice>;

export const EdgeConfig = Type.Object({
  gateway: Id,
  mqtt: EdgeMqtt,
  pollMs: Type.Integer({ minimum: 100, default: 1000 }),
  buses: Type.Array(EdgeBus, { minItems: 1 }),
  devices: Type.Array(EdgeDevice, { minItems: 1 }),
}, { additionalProperties: false });
export type EdgeConfig = Static<typeof EdgeConfig>;

/** What the schema cannot check: references to profiles and buses, unique ids, unique slaves and endpoints. */
export function crossCheckEdgeConfig(cfg: EdgeConfig, profiles: Map<string, Profile>): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const buses = new Map<string, number>();
  const endpoints = new Map<string, string>();
  cfg.buses.forEach((b, i) => {
    if (buses.has(b.id)) problems.push({ key: `buses[${i}].id`, message: `duplicate bus id "${b.id}"` });
    buses.set(b.id, i);
    const ep = `${b.host}:${b.port}`;
    const other = endpoints.get(ep);
    if (other) problems.push({ key: `buses[${i}].port`, message: `endpoint ${ep} is already bus "${other}": one connection per host and port, put its devices on that bus` });
    else endpoints.set(ep, b.id);
  });
  const ids = new Set<string>();
  const slaves = new Map<string, string>();
  cfg.devices.forEach((d, i) => {
    const at = `devices[${i}]`;
    if (ids.has(d.id)) problems.push({ key: `${at}.id`, message: `duplicate device id "${d.id}"` });
    ids.add(d.id);
    if (!profiles.has(d.profile)) {
      problems.push({ key: `${at}.profile`, message: `unknown profile "${d.profile}" (known: ${[...profiles.keys()].join(', ') || 'none'})` });
    }
    if (!buses.has(d.bus)) {
      problems.push({ key: `${at}.bus`, message: `unknown bus "${d.bus}" (buses: ${[...buses.keys()].join(', ')})` });
    } else {
      const slave = `${d.bus}/${d.unitId}`;
      const other = slaves.get(slave);
      if (other) problems.push({ key: `${at}.unitId`, message: `unit id ${d.unitId} on bus ${d.bus} is already device "${other}"` });
      else slaves.set(slave, d.id);
    }
  });
  return problems.slice(0, 10);
}

/** Validates an edge config object (defaults applied) and its references; throws ConfigError naming `file`. */
export function validateEdgeConfig(value: unknown, profiles: Map<string, Profile>, file = '(inline)'): EdgeConfig {
  const result = check(EdgeConfig, value);
  if (!result.ok) throw new ConfigError(EdgeErrors.CONFIG_INVALID, file, result.problems);
  const problems = crossCheckEdgeConfig(result.value, profiles);
  if (problems.length) throw new ConfigError(EdgeErrors.CONFIG_INVALID, file, problems);
  return result.value;
}

/** Reads a YAML edge config, validates it and checks that every profile and bus it names exists. */
export function loadEdgeConfig(file: string, profiles: Map<string, Profile>): EdgeConfig {
  const cfg = loadConfig(file, EdgeConfig);
  const problems = crossCheckEdgeConfig(cfg, profiles);
  if (problems.length) throw new ConfigError(EdgeErrors.CONFIG_INVALID, file, problems);
  return cfg;
}

/**
 * The edge config of one gateway of a district: its buses and the devices on them.
 * `busPorts` overrides bus ports (the demo, where simulators bind port 0 and report the port they got).
 * The result is validated; profile references are checked by `validateEdgeConfig` when profiles are given.
 */
export function edgeConfigFromDistrict(
  district: District,
  gatewayId: string,
  mqtt: { url: string; username: string; password: string; keepaliveS?: number },
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
