import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { loadConfig, ConfigError } from '../lib/config.ts';
import { CsError } from '../lib/errors.ts';
import { DeviceErrors } from './errors.ts';

/**
 * Device profiles are data with a small vocabulary (after ThingsBoard gateway's modbus.json
 * and zigbee-herdsman-converters): where a point lives, how its bytes are laid out,
 * how it scales, and the default thresholds the cloud evaluates.
 */

/** A closed vocabulary as one list: the schema and the type both come from it. */
function oneOf<const T extends string>(values: readonly T[], opts: { default?: T } = {}): TUnion<TLiteral<T>[]> {
  return Type.Union(values.map((v) => Type.Literal(v)), opts) as TUnion<TLiteral<T>[]>;
}

export const DATA_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bits', 'string'] as const;
export type DataType = (typeof DATA_TYPES)[number];

/** Byte order of a value as letters A (most significant byte) .. D; 64-bit types extend it per word pair. */
export const BYTE_ORDERS = ['ABCD', 'DCBA', 'BADC', 'CDAB'] as const;
export type ByteOrder = (typeof BYTE_ORDERS)[number];

/** Modbus tables: holding registers (FC3/6/16), input registers (FC4), coils (FC1/5/15), discrete inputs (FC2). */
export const TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
export type Table = (typeof TABLES)[number];

export const PointKey = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' });

/** Simulator behaviour of one point. */
export const SimBehaviour = Type.Object({
  /** Resting value, in engineering units. */
  base: Type.Number(),
  /** Uniform noise amplitude around the value. */
  noise: Type.Number({ default: 0, minimum: 0 }),
  /** Change per second while ramping (slow rise). */
  ramp: Type.Optional(Type.Number()),
  min: Type.Optional(Type.Number()),
  max: Type.Optional(Type.Number()),
}, { additionalProperties: false });
export type SimBehaviour = Static<typeof SimBehaviour>;

export const Point = Type.Object({
  key: PointKey,
  name: Type.String(),
  table: oneOf(TABLES, { default: 'holding' }),
  /** Register (or coil) address as the vendor's manual writes it; see `addressBase`. */
  address: Type.Integer({ minimum: 0, maximum: 65535 }),
  type: oneOf(DATA_TYPES, { default: 'uint16' }),
  order: Type.Optional(oneOf(BYTE_ORDERS)),
  /** For `bits`: which bit of the 16-bit register (0 = least significant). */
  bit: Type.Optional(Type.Integer({ minimum: 0, maximum: 15 })),
  /** For `string`: length in registers (two ASCII characters each). */
  length: Type.Optional(Type.Integer({ minimum: 1, maximum: 125 })),
  /** Engineering value = raw × scale + offset. */
  scale: Type.Number({ default: 1 }),
  offset: Type.Number({ default: 0 }),
  unit: Type.String({ default: '' }),
  writable: Type.Boolean({ default: false }),
  sim: Type.Optional(SimBehaviour),
}, { additionalProperties: false });
export type Point = Static<typeof Point>;

export const Threshold = Type.Object({
  id: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
  point: PointKey,
  /** Breach when the value is above (`>`), below (`<`) or equal (`==`, for flags) to `value`. */
  op: Type.Union([Type.Literal('>'), Type.Literal('<'), Type.Literal('==')]),
  value: Type.Union([Type.Number(), Type.Boolean()]),
  /** The hazard it raises; one open case per device and hazard. */
  hazard: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
  severity: oneOf(['info', 'minor', 'major', 'critical'] as const),
  /** Case class: `urgent` hazards are capped at 12 hours; `device-health` goes to the maintainer. */
  class: oneOf(['urgent', 'routine', 'device-health'] as const),
}, { additionalProperties: false });
export type Threshold = Static<typeof Threshold>;

export const Profile = Type.Object({
  id: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
  kind: oneOf(['manhole-cover', 'pipeline', 'water-level'] as const),
  name: Type.String(),
  vendor: Type.Optional(Type.String()),
  /** 0 when the manual counts registers from 0 (protocol addresses), 1 when from 1. */
  addressBase: Type.Union([Type.Literal(0), Type.Literal(1)], { default: 0 }),
  /** Default byte order of multi-register values. */
  order: oneOf(BYTE_ORDERS, { default: 'ABCD' }),
  /** Default poll interval. */
  pollMs: Type.Integer({ minimum: 100, default: 1000 }),
  points: Type.Array(Point, { minItems: 1 }),
  thresholds: Type.Array(Threshold, { default: [] }),
}, { additionalProperties: false });
export type Profile = Static<typeof Profile>;

/** Number of 16-bit registers a point occupies (1 for coils and discrete inputs). */
export function registerCount(p: Pick<Point, 'type' | 'length' | 'table'>): number {
  if (p.table === 'coil' || p.table === 'discrete') return 1;
  switch (p.type) {
    case 'int32': case 'uint32': case 'float32': return 2;
    case 'float64': return 4;
    case 'string': return p.length ?? 1;
    default: return 1;
  }
}

/** Protocol (0-based) address of a point. */
export function protocolAddress(profile: Pick<Profile, 'addressBase'>, point: Pick<Point, 'address'>): number {
  return point.address - profile.addressBase;
}

/** Checks what the schema cannot: unique keys, bit and length where needed, no overlap, thresholds on real points. */
function crossCheck(profile: Profile, file: string): void {
  const problems: { key: string; message: string }[] = [];
  const keys = new Set<string>();
  const used = new Map<string, string>();
  profile.points.forEach((p, i) => {
    const at = `points[${i}]`;
    if (keys.has(p.key)) problems.push({ key: `${at}.key`, message: `duplicate point key "${p.key}"` });
    keys.add(p.key);
    if (p.type === 'bits' && p.bit === undefined && p.table !== 'coil' && p.table !== 'discrete') problems.push({ key: `${at}.bit`, message: 'is required for type bits' });
    if (p.type === 'string' && p.length === undefined) problems.push({ key: `${at}.length`, message: 'is required for type string' });
    if (p.address < profile.addressBase) problems.push({ key: `${at}.address`, message: `is below addressBase ${profile.addressBase}` });
    if ((p.table === 'coil' || p.table === 'discrete') && p.type !== 'bits') problems.push({ key: `${at}.type`, message: `must be bits for table ${p.table}` });
    const n = registerCount(p);
    for (let r = 0; r < n; r++) {
      const slot = `${p.table}:${p.address + r}${p.type === 'bits' && p.table !== 'coil' && p.table !== 'discrete' ? `.${p.bit}` : ''}`;
      const other = used.get(slot);
      if (other) problems.push({ key: `${at}.address`, message: `overlaps point "${other}"` });
      used.set(slot, p.key);
    }
  });
  profile.thresholds.forEach((t, i) => {
    if (!keys.has(t.point)) problems.push({ key: `thresholds[${i}].point`, message: `names no point of this profile ("${t.point}")` });
  });
  if (problems.length) throw new ConfigError(DeviceErrors.PROFILE_INVALID, file, problems);
}

export function loadProfile(file: string): Profile {
  const profile = loadConfig(file, Profile);
  crossCheck(profile, file);
  return profile;
}

export const BUILTIN_PROFILE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'profiles');

/** Loads every `*.yaml` profile of a directory (the built-in ones by default), keyed by id. */
export function loadProfiles(dir = BUILTIN_PROFILE_DIR): Map<string, Profile> {
  const out = new Map<string, Profile>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort()) {
    const p = loadProfile(join(dir, f));
    out.set(p.id, p);
  }
  return out;
}

export function getPoint(profile: Profile, key: string): Point {
  const p = profile.points.find((x) => x.key === key);
  if (!p) {
    throw new CsError(DeviceErrors.POINT_UNKNOWN, `profile ${profile.id} has no point "${key}" (points: ${profile.points.map((x) => x.key).join(', ')})`);
  }
  return p;
}
