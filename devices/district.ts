import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { ID_PATTERN } from '../lib/topics.ts';
import { DeviceErrors } from './errors.ts';
import { profileRefProblem, unknownPointProblem, type Profile } from './profile.ts';
import { scenarioPoint } from './scenario.ts';

/**
 * A district: the device registry shared by the simulators, the edge gateways and the cloud.
 * Each device sits on a Modbus bus (a TCP endpoint or serial server) behind one edge gateway,
 * belongs to an owner unit and is maintained by a maintainer unit.
 */

const Id = Type.String({ pattern: ID_PATTERN });

export const Unit = Type.Object({
  id: Id,
  name: Type.String(),
  /** Who answers for the unit around the clock. */
  dutyContact: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type Unit = Static<typeof Unit>;

export const Bus = Type.Object({
  id: Id,
  gateway: Id,
  /** Modbus TCP endpoint. Port 0 lets the simulator pick (demo and tests). */
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  timeoutMs: Type.Integer({ minimum: 10, default: 1000 }),
}, { additionalProperties: false });
export type Bus = Static<typeof Bus>;

/** A scripted simulator behaviour: steady with noise, slow rise, or sudden breach. */
export const Scenario = Type.Object({
  kind: Type.Union([Type.Literal('steady'), Type.Literal('slow-rise'), Type.Literal('sudden-breach')]),
  point: Type.Optional(Type.String()),
  /** Seconds after start when the rise or breach begins. */
  afterS: Type.Number({ minimum: 0, default: 0 }),
  /** Value the point rises to or jumps to. */
  to: Type.Optional(Type.Union([Type.Number(), Type.Boolean()])),
  /** For slow-rise: seconds to reach `to`. */
  overS: Type.Optional(Type.Number({ minimum: 0.001 })),
}, { additionalProperties: false });
export type Scenario = Static<typeof Scenario>;

export const Device = Type.Object({
  id: Id,
  profile: Type.String(),
  name: Type.String(),
  /** 16-digit component code (GB/T 30428.2): county 6, major class 2, minor class 2, serial 6. */
  componentCode: Type.String({ pattern: '^[0-9]{16}$' }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  address: Type.Optional(Type.String()),
  grid: Type.Optional(Type.String()),
  ownerUnit: Id,
  maintainerUnit: Id,
  bus: Id,
  unitId: Type.Integer({ minimum: 1, maximum: 247 }),
  pollMs: Type.Optional(Type.Integer({ minimum: 100 })),
  scenario: Type.Optional(Scenario),
}, { additionalProperties: false });
export type Device = Static<typeof Device>;

/** A device's district: the county code, the first 6 digits of its component code (GB/T 30428.2). */
export const districtOf = (d: Pick<Device, 'componentCode'>): string => d.componentCode.slice(0, 6);

export const District = Type.Object({
  name: Type.String(),
  /** 6-digit administrative division code, e.g. 440402 for Xiangzhou. */
  county: Type.String({ pattern: '^[0-9]{6}$' }),
  units: Type.Array(Unit, { minItems: 1 }),
  gateways: Type.Array(Type.Object({ id: Id, name: Type.String() }, { additionalProperties: false }), { minItems: 1 }),
  buses: Type.Array(Bus, { minItems: 1 }),
  devices: Type.Array(Device, { minItems: 1 }),
}, { additionalProperties: false });
export type District = Static<typeof District>;

/** Loads a district and checks its references (units, buses, gateways, profiles, unique ids). */
export function loadDistrict(file: string, profiles: Map<string, Profile>): District {
  const d = loadConfig(file, District);
  const problems: { key: string; message: string }[] = [];
  const units = new Set(d.units.map((u) => u.id));
  const gateways = new Set(d.gateways.map((g) => g.id));
  const buses = new Map(d.buses.map((b) => [b.id, b]));
  d.buses.forEach((b, i) => {
    if (!gateways.has(b.gateway)) problems.push({ key: `buses[${i}].gateway`, message: `unknown gateway "${b.gateway}"` });
  });
  const ids = new Set<string>();
  const slaves = new Set<string>();
  d.devices.forEach((dev, i) => {
    const at = `devices[${i}]`;
    if (ids.has(dev.id)) problems.push({ key: `${at}.id`, message: `duplicate device id "${dev.id}"` });
    ids.add(dev.id);
    const bad = profileRefProblem(profiles, dev.profile);
    if (bad) problems.push({ key: `${at}.profile`, message: bad });
    const profile = profiles.get(dev.profile);
    if (profile && dev.scenario) {
      // The scenario names a point of the profile (or drives its first threshold's); check it now, not at run time.
      const missing = dev.scenario.point !== undefined ? unknownPointProblem(profile, `${at}.scenario.point`, dev.scenario.point) : undefined;
      if (missing) problems.push(missing);
      else {
        try {
          scenarioPoint(profile, dev.scenario, `${at}.scenario`);
        } catch (err) {
          const key = ((err as { details?: { key?: string } }).details?.key) ?? `${at}.scenario`;
          problems.push({ key, message: (err as Error).message.replace(`${key}: `, '') });
        }
      }
    }
    for (const k of ['ownerUnit', 'maintainerUnit'] as const) {
      if (!units.has(dev[k])) problems.push({ key: `${at}.${k}`, message: `unknown unit "${dev[k]}"` });
    }
    if (!buses.has(dev.bus)) problems.push({ key: `${at}.bus`, message: `unknown bus "${dev.bus}"` });
    const slave = `${dev.bus}/${dev.unitId}`;
    if (slaves.has(slave)) problems.push({ key: `${at}.unitId`, message: `unit id ${dev.unitId} is already used on bus ${dev.bus}` });
    slaves.add(slave);
    if (!dev.componentCode.startsWith(d.county)) problems.push({ key: `${at}.componentCode`, message: `must start with the county code ${d.county}` });
  });
  if (problems.length) throw new ConfigError(DeviceErrors.DISTRICT_INVALID, file, problems.slice(0, 10));
  return d;
}

export function gatewayOf(d: District, device: Device): string {
  return d.buses.find((b) => b.id === device.bus)!.gateway;
}
