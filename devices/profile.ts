import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import { loadConfig, ConfigError } from '../lib/config.ts';
import { CsError } from '../lib/errors.ts';
import type { SchemaProblem } from '../lib/schema.ts';
import { CaseClassT, SeverityT } from '../lib/vocabulary.ts';
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
  /**
   * Register (or coil) address as the vendor's manual writes it; see `addressBase`. Every register of
   * the point must fall in the 16-bit protocol address space (Modbus Application Protocol 4.4: 0..65535).
   */
  address: Type.Integer({ minimum: 0, maximum: 65536 }),
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
  severity: SeverityT,
  /** Case class: `urgent` hazards are capped at 12 hours; `device-health` goes to the maintainer. */
  class: CaseClassT,
}, { additionalProperties: false });
export type Threshold = Static<typeof Threshold>;

/**
 * Kinds the built-in profiles describe (docs/domain.md, the categories table). `kind` is open: any
 * other kind matching KIND_PATTERN is accepted (a rain gauge, a water-quality transmitter); the cloud
 * carries it to routing rules (`kind`) and the web page.
 */
export const KNOWN_KINDS = ['manhole-cover', 'pipeline', 'water-level'] as const;
export const KIND_PATTERN = '^[a-z][a-z0-9-]{0,63}$';

export const Profile = Type.Object({
  id: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
  /** What the device is (lower-case words joined by `-`); see KNOWN_KINDS. */
  kind: Type.String({ pattern: KIND_PATTERN }),
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

/** Last protocol address of a table (Modbus Application Protocol 4.4: addresses are 16-bit). */
const LAST_ADDRESS = 0xffff;

/**
 * Checks what the schema cannot: unique keys, bit and length where needed, every register inside
 * the 16-bit address space, no overlap, and every name of a point (thresholds) naming a real one.
 */
export function profileProblems(profile: Profile): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const keys = new Set<string>();
  const used = new Map<string, string>();
  profile.points.forEach((p, i) => {
    const at = `points[${i}]`;
    const flagTable = p.table === 'coil' || p.table === 'discrete';
    if (keys.has(p.key)) problems.push({ key: `${at}.key`, message: `duplicate point key "${p.key}"` });
    keys.add(p.key);
    if (p.type === 'bits' && p.bit === undefined && !flagTable) problems.push({ key: `${at}.bit`, message: 'is required for type bits' });
    if (p.bit !== undefined && (p.type !== 'bits' || flagTable)) problems.push({ key: `${at}.bit`, message: 'applies to type bits in a holding or input register only' });
    if (p.type === 'string' && p.length === undefined) problems.push({ key: `${at}.length`, message: 'is required for type string' });
    if (flagTable && p.type !== 'bits') problems.push({ key: `${at}.type`, message: `must be bits for table ${p.table}` });
    if (p.scale === 0) problems.push({ key: `${at}.scale`, message: 'must not be 0 (a write could not be encoded)' });
    if (p.sim?.min !== undefined && p.sim.max !== undefined && p.sim.min > p.sim.max) {
      problems.push({ key: `${at}.sim.min`, message: `is above sim.max (${p.sim.min} > ${p.sim.max})` });
    }
    const n = registerCount(p);
    const first = p.address - profile.addressBase;
    if (first < 0) {
      problems.push({ key: `${at}.address`, message: `is below addressBase ${profile.addressBase}` });
      return;
    }
    if (first + n - 1 > LAST_ADDRESS) {
      const what = n > 1 ? `its ${n} registers end at protocol address ${first + n - 1}` : `protocol address ${first}`;
      problems.push({ key: `${at}.address`, message: `${what}, beyond the 16-bit address space (last ${LAST_ADDRESS + profile.addressBase} with addressBase ${profile.addressBase})` });
      return;
    }
    for (let r = 0; r < n; r++) {
      const slot = `${p.table}:${p.address + r}${p.type === 'bits' && !flagTable ? `.${p.bit}` : ''}`;
      const other = used.get(slot);
      if (other) problems.push({ key: `${at}.address`, message: `overlaps point "${other}"` });
      used.set(slot, p.key);
    }
  });
  profile.thresholds.forEach((t, i) => {
    if (!keys.has(t.point)) problems.push({ key: `thresholds[${i}].point`, message: `names no point of this profile ("${t.point}")` });
  });
  return problems;
}

export function loadProfile(file: string): Profile {
  const profile = loadConfig(file, Profile);
  const problems = profileProblems(profile);
  if (problems.length) throw new ConfigError(DeviceErrors.PROFILE_INVALID, file, problems);
  return profile;
}

/** Where a name of a point outside a profile (a deadband, a scenario) names none of its points. */
export function unknownPointProblem(profile: Profile, key: string, point: string): SchemaProblem | undefined {
  if (profile.points.some((p) => p.key === point)) return undefined;
  return { key, message: `profile ${profile.id} has no point "${point}" (points: ${profile.points.map((p) => p.key).join(', ')})` };
}

export { BUILTIN_PROFILE_DIR, loadProfiles, profileRefProblem, ProfileSet } from './profile-set.ts';

export function getPoint(profile: Profile, key: string): Point {
  const p = profile.points.find((x) => x.key === key);
  if (!p) {
    throw new CsError(DeviceErrors.POINT_UNKNOWN, `profile ${profile.id} has no point "${key}" (points: ${profile.points.map((x) => x.key).join(', ')})`);
  }
  return p;
}
