import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { decodePoint, encodePoint, type EngValue } from './codec.ts';
import type { Scenario } from './district.ts';
import { DeviceErrors } from './errors.ts';
import { getPoint, protocolAddress, registerCount, type Point, type Profile } from './profile.ts';
import { behaviourValue, initialValue, mulberry32, scenarioPoint, seedFor, type Rng } from './scenario.ts';

/**
 * One simulated device, shared by the Modbus TCP simulator (simulator.ts) and the RTU line simulator
 * (rtu-sim.ts): a register image built from its profile with the shared codec, whose points follow
 * their `sim` behaviour and the device's scenario on the injected clock, in steps of `tickMs`,
 * evaluated lazily when the image is read. A point written by a master or by `set()` is held: its
 * behaviour stops.
 */

export type Image = { holding: number[]; input: number[]; coils: boolean[]; discrete: boolean[] };
export type ImageTable = keyof Image;

const TABLE_OF: Record<Point['table'], ImageTable> = { holding: 'holding', input: 'input', coil: 'coils', discrete: 'discrete' };

export interface PointState {
  point: Point;
  table: ImageTable;
  /** Protocol address of its first register or bit. */
  addr: number;
  count: number;
  /** Moved by a sim behaviour or the device's scenario. */
  driven: boolean;
  /** Written by a master or set(): no longer driven. */
  held: boolean;
}

export interface SimDevice {
  readonly id: string;
  readonly unitId: number;
  readonly profile: Profile;
  readonly image: Image;
  /** Moves every driven, unheld point to its value at `now` (once per tick). */
  evaluate(): void;
  /** Forgets the last evaluated tick (the clock restarted). */
  restart(startedAt: number): void;
  /** Whether a master may write this register or coil: it belongs to a point (a writable one when `writableOnly`). */
  writable(table: 'holding' | 'coils', addr: number, writableOnly: boolean): boolean;
  /** Marks the points living in these addresses held; returns their keys. */
  hold(table: ImageTable, addr: number, count: number): string[];
  value(key: string): EngValue;
  /** Sets a point and holds it. */
  set(key: string, value: EngValue): void;
}

export interface SimDeviceSpec { id: string; profile: Profile; unitId: number; scenario?: Scenario }

export interface SimDeviceOptions {
  /** Names the device in messages, e.g. `devices[3]`. */
  at: string;
  seed: number;
  tickMs: number;
  now: () => number;
  log: Logger;
}

export function buildSimDevice(spec: SimDeviceSpec, o: SimDeviceOptions): SimDevice {
  const { profile } = spec;
  const scenarioKey = spec.scenario ? scenarioPoint(profile, spec.scenario, `${o.at}.scenario`).key : undefined;
  const image: Image = { holding: [], input: [], coils: [], discrete: [] };
  const owners: Record<ImageTable, Map<number, PointState[]>> = { holding: new Map(), input: new Map(), coils: new Map(), discrete: new Map() };
  const points = profile.points.map((point): PointState => ({
    point,
    table: TABLE_OF[point.table],
    addr: protocolAddress(profile, point),
    count: registerCount(point),
    driven: point.sim !== undefined || point.key === scenarioKey,
    held: false,
  }));
  // The image spans protocol addresses 0 up to the end of the last point of each table; gaps read 0.
  for (const ps of points) {
    for (let a = ps.addr; a < ps.addr + ps.count; a++) {
      if (ps.table === 'coils' || ps.table === 'discrete') {
        while (image[ps.table].length <= a) image[ps.table].push(false);
      } else {
        while (image[ps.table].length <= a) image[ps.table].push(0);
      }
      owners[ps.table].set(a, [...(owners[ps.table].get(a) ?? []), ps]);
    }
  }
  const rng: Rng = mulberry32(seedFor(o.seed, spec.id));
  let startedAt = o.now();
  let lastTick: number | undefined;

  /** Encodes a value of a point into the image with the shared codec. */
  function writeImage(ps: PointState, value: EngValue): void {
    if (ps.table === 'coils' || ps.table === 'discrete') {
      image[ps.table][ps.addr] = encodePoint(ps.point, value, profile.order) as boolean;
      return;
    }
    const regs = image[ps.table];
    const out = encodePoint(ps.point, value, profile.order, regs[ps.addr]) as number[];
    out.forEach((w, i) => { regs[ps.addr + i] = w; });
  }

  function stateOf(key: string): PointState {
    const point = getPoint(profile, key);
    return points.find((ps) => ps.point === point)!;
  }

  for (const ps of points) writeImage(ps, initialValue(ps.point, spec.id));

  const dev: SimDevice = {
    id: spec.id, unitId: spec.unitId, profile, image,
    evaluate() {
      // Time runs on a grid of `tickMs` from the start: the image changes once per tick, whenever it is next looked at.
      const tick = Math.floor((o.now() - startedAt) / o.tickMs);
      if (lastTick === tick) return;
      lastTick = tick;
      const elapsedS = (tick * o.tickMs) / 1000;
      for (const ps of points) {
        if (!ps.driven || ps.held) continue;
        const scenario = ps.point.key === scenarioKey ? spec.scenario : undefined;
        try {
          writeImage(ps, behaviourValue(ps.point, scenario, elapsedS, rng));
        } catch (err) {
          o.log.warn({ err, device: spec.id, point: ps.point.key }, 'simulated value does not encode; point left as it was');
        }
      }
    },
    restart(at) {
      startedAt = at;
      lastTick = undefined;
    },
    writable(table, addr, writableOnly) {
      return (owners[table].get(addr) ?? []).some((ps) => !writableOnly || ps.point.writable);
    },
    hold(table, addr, count) {
      const held = new Set<PointState>();
      for (let a = addr; a < addr + count; a++) for (const ps of owners[table].get(a) ?? []) held.add(ps);
      for (const ps of held) ps.held = true;
      return [...held].map((ps) => ps.point.key);
    },
    value(key) {
      const ps = stateOf(key);
      dev.evaluate();
      const data = ps.table === 'coils' || ps.table === 'discrete'
        ? [image[ps.table][ps.addr]]
        : image[ps.table].slice(ps.addr, ps.addr + ps.count);
      return decodePoint(ps.point, data, profile.order);
    },
    set(key, value) {
      const ps = stateOf(key);
      dev.evaluate();
      writeImage(ps, value);
      ps.held = true;
    },
  };
  return dev;
}

/** A simulator option that cannot be used. */
export function simConfigError(key: string, message: string): CsError {
  return new CsError(DeviceErrors.SIM_CONFIG_INVALID, `simulator option ${key}: ${message}`, { key });
}

/** Checks a device spec of a simulator's list: id, loaded profile, unit id 1..247, unique id and unit. */
export function checkDeviceSpec(spec: SimDeviceSpec, at: string, ids: Set<string>, units: Map<number, string>): void {
  if (!spec || typeof spec.id !== 'string' || !spec.id) throw simConfigError(`${at}.id`, 'is required');
  if (!spec.profile || !Array.isArray(spec.profile.points)) throw simConfigError(`${at}.profile`, `device ${spec.id} needs a loaded profile`);
  // Modbus over Serial Line 2.2: 1..247 address individual devices; 0 is broadcast.
  if (!Number.isInteger(spec.unitId) || spec.unitId < 1 || spec.unitId > 247) {
    throw simConfigError(`${at}.unitId`, `must be an integer 1..247, got ${spec.unitId}`);
  }
  if (ids.has(spec.id)) throw simConfigError(`${at}.id`, `duplicate device id "${spec.id}"`);
  const other = units.get(spec.unitId);
  if (other) throw simConfigError(`${at}.unitId`, `unit id ${spec.unitId} is already used by ${other}`);
  ids.add(spec.id);
  units.set(spec.unitId, spec.id);
}
