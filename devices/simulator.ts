import { ServerTCP, type IServiceVector } from 'modbus-serial';
import type { AddressInfo } from 'node:net';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import { decodePoint, encodePoint, type EngValue } from './codec.ts';
import type { Scenario } from './district.ts';
import { DeviceErrors } from './errors.ts';
import { getPoint, protocolAddress, registerCount, type Point, type Profile } from './profile.ts';
import { behaviourValue, initialValue, mulberry32, scenarioPoint, seedFor, type Rng } from './scenario.ts';

/**
 * A Modbus TCP slave simulator for one bus: one endpoint answering several unit ids, as a
 * serial-to-TCP gateway in front of an RS-485 line does (Modbus Messaging on TCP/IP
 * Implementation Guide 4.4.1.3: the unit identifier addresses the device behind a gateway).
 *
 * Each device holds a register image built from its profile with the shared codec. Point values
 * follow the profile's `sim` behaviour and the device's scenario, evaluated on the injected clock
 * in steps of `tickMs`, lazily when the image is read (by a master, `value()` or `registers()`), so
 * a test that moves `now` sees the new value on its next read without waiting for a timer.
 * A point written by a master or by `set()` is held: its behaviour stops.
 */

export interface SimDeviceSpec { id: string; profile: Profile; unitId: number; scenario?: Scenario }

export interface SimulatorOptions {
  host?: string;
  /** 0 = any free port; after a stop, a restart binds the same port again. */
  port?: number;
  devices: SimDeviceSpec[];
  logger?: Logger;
  now?: () => number;
  /** How often behaviours update, on the `now` clock; default 250 ms. */
  tickMs?: number;
  /** Seed of the noise; each device draws from its own stream derived from it and its id. Default 1. */
  seed?: number;
  /**
   * What a request for a unit id no device has gets: `exception` answers 0x0B, gateway target
   * device failed to respond (Modbus Application Protocol 7); `silent` answers nothing, so the
   * master times out, as a bare RS-485 line does. Default `exception`.
   */
  unknownUnit?: 'exception' | 'silent';
  /**
   * Which mapped registers and coils a master may write: `any` (default: a test bench drives every
   * reading, e.g. `citysteward sim set`) or `writable` (only points the profile marks writable, as a
   * real device would; other writes answer exception 2).
   */
  writes?: 'any' | 'writable';
}

export interface Simulator {
  start(): Promise<{ host: string; port: number }>;
  stop(): Promise<void>;
  /** The bound port once started (the configured one before). */
  readonly port: number;
  /** A point's value as a master would decode it from the image now. */
  value(deviceId: string, key: string): EngValue;
  /** Sets a point (any table, writable or not) and holds it there: its behaviour stops. */
  set(deviceId: string, key: string, value: EngValue): void;
  /** Copies of a device's image, indexed by protocol (0-based) address. */
  registers(deviceId: string): { holding: number[]; input: number[]; coils: boolean[]; discrete: boolean[] };
}

/** Exception codes of Modbus Application Protocol V1.1b3 section 7. */
export const ModbusException = {
  ILLEGAL_FUNCTION: 0x01,
  ILLEGAL_DATA_ADDRESS: 0x02,
  ILLEGAL_DATA_VALUE: 0x03,
  SERVER_DEVICE_FAILURE: 0x04,
  GATEWAY_TARGET_FAILED: 0x0b,
} as const;

/** modbus-serial's ServerTCP answers an error carrying `modbusErrorCode` with that exception. */
class ExceptionError extends Error {
  readonly modbusErrorCode: number;
  constructor(code: number, message: string) {
    super(message);
    this.modbusErrorCode = code;
  }
}

type Image = { holding: number[]; input: number[]; coils: boolean[]; discrete: boolean[] };
type ImageTable = keyof Image;

const TABLE_OF: Record<Point['table'], ImageTable> = { holding: 'holding', input: 'input', coil: 'coils', discrete: 'discrete' };

interface PointState {
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

interface DeviceState {
  id: string;
  unitId: number;
  profile: Profile;
  scenario?: Scenario;
  scenarioKey?: string;
  image: Image;
  points: PointState[];
  /** Per table and address, the points living there (several bits can share a register). */
  owners: Record<ImageTable, Map<number, PointState[]>>;
  rng: Rng;
  /** The tick of the `now` clock the image was last evaluated for. */
  lastTick?: number;
}

/** Modbus Application Protocol 6.3, 6.4, 6.12: most registers one request may read or write. */
const MAX_READ_REGISTERS = 125;
const MAX_WRITE_REGISTERS = 123;

function configError(key: string, message: string): CsError {
  return new CsError(DeviceErrors.SIM_CONFIG_INVALID, `simulator option ${key}: ${message}`, { key });
}

function buildDevice(spec: SimDeviceSpec, at: string, seed: number): DeviceState {
  const { profile } = spec;
  const scenarioKey = spec.scenario ? scenarioPoint(profile, spec.scenario, `${at}.scenario`).key : undefined;
  const image: Image = { holding: [], input: [], coils: [], discrete: [] };
  const owners: DeviceState['owners'] = { holding: new Map(), input: new Map(), coils: new Map(), discrete: new Map() };
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
  const dev: DeviceState = {
    id: spec.id, unitId: spec.unitId, profile, scenario: spec.scenario, scenarioKey, image, points, owners,
    rng: mulberry32(seedFor(seed, spec.id)),
  };
  for (const ps of points) writeImage(dev, ps, initialValue(ps.point, spec.id));
  return dev;
}

/** Encodes a value of a point into the image with the shared codec. */
function writeImage(dev: DeviceState, ps: PointState, value: EngValue): void {
  const order = dev.profile.order;
  if (ps.table === 'coils' || ps.table === 'discrete') {
    dev.image[ps.table][ps.addr] = encodePoint(ps.point, value, order) as boolean;
    return;
  }
  const regs = dev.image[ps.table];
  const out = encodePoint(ps.point, value, order, regs[ps.addr]) as number[];
  out.forEach((w, i) => { regs[ps.addr + i] = w; });
}

function readImage(dev: DeviceState, ps: PointState): EngValue {
  const data = ps.table === 'coils' || ps.table === 'discrete'
    ? [dev.image[ps.table][ps.addr]]
    : dev.image[ps.table].slice(ps.addr, ps.addr + ps.count);
  return decodePoint(ps.point, data, dev.profile.order);
}

export function buildSimulator(opts: SimulatorOptions): Simulator {
  const host = opts.host ?? '127.0.0.1';
  const now = opts.now ?? Date.now;
  const tickMs = opts.tickMs ?? 250;
  const seed = opts.seed ?? 1;
  const unknownUnit = opts.unknownUnit ?? 'exception';
  const writes = opts.writes ?? 'any';
  const log = (opts.logger ?? silentLogger()).child({ mod: 'modbus-sim' });

  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
    throw configError('port', `must be an integer 0..65535, got ${opts.port}`);
  }
  if (!(tickMs > 0)) throw configError('tickMs', `must be a positive number of milliseconds, got ${tickMs}`);
  if (!Array.isArray(opts.devices)) throw configError('devices', 'must be a list of devices');
  if (unknownUnit !== 'exception' && unknownUnit !== 'silent') throw configError('unknownUnit', `must be exception or silent, got ${String(unknownUnit)}`);

  const byId = new Map<string, DeviceState>();
  const byUnit = new Map<number, DeviceState>();
  opts.devices.forEach((spec, i) => {
    const at = `devices[${i}]`;
    if (!spec || typeof spec.id !== 'string' || !spec.id) throw configError(`${at}.id`, 'is required');
    if (!spec.profile || !Array.isArray(spec.profile.points)) throw configError(`${at}.profile`, `device ${spec.id} needs a loaded profile`);
    // Modbus over Serial Line 2.2: 1..247 address individual devices; 0 is broadcast.
    if (!Number.isInteger(spec.unitId) || spec.unitId < 1 || spec.unitId > 247) {
      throw configError(`${at}.unitId`, `must be an integer 1..247, got ${spec.unitId}`);
    }
    if (byId.has(spec.id)) throw configError(`${at}.id`, `duplicate device id "${spec.id}"`);
    const other = byUnit.get(spec.unitId);
    if (other) throw configError(`${at}.unitId`, `unit id ${spec.unitId} is already used by ${other.id}`);
    const dev = buildDevice(spec, at, seed);
    byId.set(dev.id, dev);
    byUnit.set(dev.unitId, dev);
  });

  let startedAt = now();
  let everStarted = false;
  let server: ServerTCP | undefined;
  let boundPort = 0;
  let starting: Promise<{ host: string; port: number }> | undefined;

  function device(id: string): DeviceState {
    const dev = byId.get(id);
    if (!dev) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `simulator has no device "${id}" (devices: ${[...byId.keys()].join(', ')})`);
    return dev;
  }

  /**
   * Moves every driven, unheld point to its behaviour's value. Time runs on a grid of `tickMs`
   * from the start: the image changes once per tick, whenever it is next looked at.
   */
  function evaluate(dev: DeviceState): void {
    const tick = Math.floor((now() - startedAt) / tickMs);
    if (dev.lastTick === tick) return;
    dev.lastTick = tick;
    const elapsedS = (tick * tickMs) / 1000;
    for (const ps of dev.points) {
      if (!ps.driven || ps.held) continue;
      const scenario = ps.point.key === dev.scenarioKey ? dev.scenario : undefined;
      try {
        writeImage(dev, ps, behaviourValue(ps.point, scenario, elapsedS, dev.rng));
      } catch (err) {
        log.warn({ err, device: dev.id, point: ps.point.key }, 'simulated value does not encode; point left as it was');
      }
    }
  }

  function hold(dev: DeviceState, table: ImageTable, addr: number, count: number): string[] {
    const held = new Set<PointState>();
    for (let a = addr; a < addr + count; a++) for (const ps of dev.owners[table].get(a) ?? []) held.add(ps);
    for (const ps of held) ps.held = true;
    return [...held].map((ps) => ps.point.key);
  }

  /** Binds the TCP endpoint (ServerTCP listens in its constructor). */
  async function listen(): Promise<{ host: string; port: number }> {
    if (!everStarted) {
      // The scenario clock runs from the first start; a restart models a link coming back.
      startedAt = now();
      for (const dev of byId.values()) dev.lastTick = undefined;
      everStarted = true;
    }
    const port = boundPort || opts.port || 0;
    // ServerTCP listens on `options.port || 502`: port 0 must be passed as text to reach net.listen.
    const s = new ServerTCP(vector, { host, port: String(port) as unknown as number, unitID: 255 });
    try {
      await new Promise<void>((resolve, reject) => {
        s.once('initialized', () => resolve());
        s.once('serverError', (err) => reject(err));
      });
    } catch (err) {
      s.removeAllListeners();
      await new Promise<void>((resolve) => s.close(() => resolve()));
      throw new CsError(DeviceErrors.SIM_LISTEN_FAILED, `simulator cannot listen on ${host}:${port}: ${(err as Error).message}`, { host, port });
    }
    const srv = (s as unknown as { _server: { address(): AddressInfo } })._server;
    boundPort = srv.address().port;
    s.removeAllListeners('serverError');
    s.on('serverError', (err) => log.error({ err }, 'simulator server error'));
    s.on('socketError', (err) => log.debug({ err }, 'simulator socket error'));
    s.on('error', (err) => log.warn({ err }, 'simulator response error'));
    server = s;
    for (const dev of byId.values()) evaluate(dev);
    log.info({ host, port: boundPort, devices: [...byId.values()].map((d) => `${d.id}@${d.unitId}`) }, 'modbus simulator listening');
    return { host, port: boundPort };
  }

  // ---- the vector served by ServerTCP; callback style so that a request can go unanswered ----

  /** The device of a unit id, or answers for the missing one (0x0B, or silence) and returns undefined. */
  function unit(unitId: number, fc: string, fail: (err: Error) => void): DeviceState | undefined {
    const dev = byUnit.get(unitId);
    if (dev) return dev;
    if (unknownUnit === 'silent') {
      log.debug({ unitId, fc }, 'request for an unknown unit id left unanswered');
      return undefined;
    }
    fail(new ExceptionError(ModbusException.GATEWAY_TARGET_FAILED, `no device with unit id ${unitId}`));
    return undefined;
  }

  function readRegisters(table: 'holding' | 'input', addr: number, len: number, unitId: number, cb: (err: Error | null, v: number[]) => void): void {
    const dev = unit(unitId, table === 'holding' ? 'FC3' : 'FC4', (e) => cb(e, []));
    if (!dev) return;
    // 6.3 / 6.4: quantity 1..125 else exception 3; start + quantity beyond the map, exception 2.
    if (len < 1 || len > MAX_READ_REGISTERS) return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_VALUE, `quantity ${len}`), []);
    evaluate(dev);
    const regs = dev.image[table];
    if (addr + len > regs.length) {
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `${table} ${addr}+${len} beyond ${regs.length}`), []);
    }
    cb(null, regs.slice(addr, addr + len));
  }

  function readBit(table: 'coils' | 'discrete', addr: number, unitId: number, cb: (err: Error | null, v: boolean) => void): void {
    const dev = unit(unitId, table === 'coils' ? 'FC1' : 'FC2', (e) => cb(e, false));
    if (!dev) return;
    evaluate(dev);
    const bits = dev.image[table];
    // 6.1 / 6.2: start + quantity beyond the map, exception 2 (ServerTCP asks bit by bit).
    if (addr >= bits.length) return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `${table} ${addr} beyond ${bits.length}`), false);
    cb(null, bits[addr]);
  }

  /** A register or coil a master may write belongs to a point (a writable one unless `writes` is `any`). */
  function writableAt(dev: DeviceState, table: 'holding' | 'coils', addr: number): boolean {
    return (dev.owners[table].get(addr) ?? []).some((ps) => writes === 'any' || ps.point.writable);
  }

  function writeRegisters(addr: number, values: number[], unitId: number, fc: 'FC6' | 'FC16', cb: (err: Error | null) => void): void {
    const dev = unit(unitId, fc, cb);
    if (!dev) return;
    if (values.length < 1 || values.length > MAX_WRITE_REGISTERS) {
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_VALUE, `quantity ${values.length}`));
    }
    // 6.6 / 6.12: an address the device does not map, or maps read-only, answers exception 2.
    for (let a = addr; a < addr + values.length; a++) {
      if (a >= dev.image.holding.length || !writableAt(dev, 'holding', a)) {
        log.info({ device: dev.id, fc, addr: a }, 'write to a read-only or unmapped register refused');
        return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `holding ${a} is not writable`));
      }
    }
    evaluate(dev);
    values.forEach((v, i) => { dev.image.holding[addr + i] = v & 0xffff; });
    const points = hold(dev, 'holding', addr, values.length);
    log.info({ device: dev.id, fc, addr, values, points }, 'registers written by a master');
    cb(null);
  }

  function writeCoil(addr: number, value: boolean, unitId: number, cb: (err: Error | null) => void): void {
    const dev = unit(unitId, 'FC5', cb);
    if (!dev) return;
    if (addr >= dev.image.coils.length || !writableAt(dev, 'coils', addr)) {
      log.info({ device: dev.id, fc: 'FC5', addr }, 'write to a read-only or unmapped coil refused');
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `coil ${addr} is not writable`));
    }
    evaluate(dev);
    dev.image.coils[addr] = value;
    const points = hold(dev, 'coils', addr, 1);
    log.info({ device: dev.id, addr, value, points }, 'coil written by a master');
    cb(null);
  }

  // Every function declares its callback so ServerTCP (servertcp_handler.js) calls it callback style.
  const vector: IServiceVector = {
    getHoldingRegister: (addr: number, unitId: number, cb: (err: Error | null, v: number) => void) =>
      readRegisters('holding', addr, 1, unitId, (e, v) => cb(e, v[0] ?? 0)),
    getMultipleHoldingRegisters: (addr: number, len: number, unitId: number, cb: (err: Error | null, v: number[]) => void) =>
      readRegisters('holding', addr, len, unitId, cb),
    getInputRegister: (addr: number, unitId: number, cb: (err: Error | null, v: number) => void) =>
      readRegisters('input', addr, 1, unitId, (e, v) => cb(e, v[0] ?? 0)),
    getMultipleInputRegisters: (addr: number, len: number, unitId: number, cb: (err: Error | null, v: number[]) => void) =>
      readRegisters('input', addr, len, unitId, cb),
    getCoil: (addr: number, unitId: number, cb: (err: Error | null, v: boolean) => void) => readBit('coils', addr, unitId, cb),
    getDiscreteInput: (addr: number, unitId: number, cb: (err: Error | null, v: boolean) => void) => readBit('discrete', addr, unitId, cb),
    setRegister: (addr: number, value: number, unitId: number, cb: (err: Error | null) => void) =>
      writeRegisters(addr, [value], unitId, 'FC6', cb),
    setRegisterArray: (addr: number, values: number[], unitId: number, cb: (err: Error | null) => void) =>
      writeRegisters(addr, values, unitId, 'FC16', cb),
    // FC15 arrives here coil by coil (no setCoilArray: ServerTCP's FC15 path with it answers before writing).
    setCoil: (addr: number, value: boolean, unitId: number, cb: (err: Error | null) => void) => writeCoil(addr, value, unitId, cb),
  };

  return {
    get port() {
      return boundPort || opts.port || 0;
    },

    start() {
      if (server) return Promise.resolve({ host, port: boundPort });
      // Two overlapping start() calls share one listen.
      starting ??= listen().finally(() => { starting = undefined; });
      return starting;
    },

    async stop() {
      if (starting) await starting.catch(() => {});
      const s = server;
      if (!s) return;
      server = undefined;
      // ServerTCP.close closes the listener and destroys every open socket.
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.removeAllListeners();
      log.info({ port: boundPort }, 'modbus simulator stopped');
    },
    value(deviceId, key) {
      const dev = device(deviceId);
      const point = getPoint(dev.profile, key);
      evaluate(dev);
      return readImage(dev, dev.points.find((ps) => ps.point === point)!);
    },

    set(deviceId, key, value) {
      const dev = device(deviceId);
      const point = getPoint(dev.profile, key);
      const ps = dev.points.find((p) => p.point === point)!;
      evaluate(dev);
      writeImage(dev, ps, value);
      ps.held = true;
      log.info({ device: dev.id, point: key, value }, 'point set and held');
    },

    registers(deviceId) {
      const dev = device(deviceId);
      evaluate(dev);
      return {
        holding: [...dev.image.holding], input: [...dev.image.input],
        coils: [...dev.image.coils], discrete: [...dev.image.discrete],
      };
    },
  };
}
