import { ServerTCP, type IServiceVector } from 'modbus-serial';
import type { AddressInfo } from 'node:net';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { EngValue } from './codec.ts';
import { DeviceErrors } from './errors.ts';
import { buildSimDevice, checkDeviceSpec, simConfigError as configError, type SimDevice, type SimDeviceSpec } from './sim-device.ts';

/**
 * A Modbus TCP slave simulator for one bus: one endpoint answering several unit ids, as a
 * serial-to-TCP gateway in front of an RS-485 line does (Modbus Messaging on TCP/IP
 * Implementation Guide 4.4.1.3: the unit identifier addresses the device behind a gateway).
 *
 * Each device is a register image (sim-device.ts) whose points follow their `sim` behaviour and the
 * device's scenario on the injected clock, evaluated when the image is read (by a master, `value()`
 * or `registers()`), so a test that moves `now` sees the new value on its next read without waiting
 * for a timer. A point written by a master or by `set()` is held: its behaviour stops.
 */

export type { SimDeviceSpec };

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

/** Modbus Application Protocol 6.3, 6.4, 6.12: most registers one request may read or write. */
const MAX_READ_REGISTERS = 125;
const MAX_WRITE_REGISTERS = 123;

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

  const byId = new Map<string, SimDevice>();
  const byUnit = new Map<number, SimDevice>();
  const ids = new Set<string>();
  const units = new Map<number, string>();
  opts.devices.forEach((spec, i) => {
    const at = `devices[${i}]`;
    checkDeviceSpec(spec, at, ids, units);
    const dev = buildSimDevice(spec, { at, seed, tickMs, now, log });
    byId.set(dev.id, dev);
    byUnit.set(dev.unitId, dev);
  });

  let everStarted = false;
  let server: ServerTCP | undefined;
  let boundPort = 0;
  let starting: Promise<{ host: string; port: number }> | undefined;

  function device(id: string): SimDevice {
    const dev = byId.get(id);
    if (!dev) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `simulator has no device "${id}" (devices: ${[...byId.keys()].join(', ')})`);
    return dev;
  }

  /** Binds the TCP endpoint (ServerTCP listens in its constructor). */
  async function listen(): Promise<{ host: string; port: number }> {
    if (!everStarted) {
      // The scenario clock runs from the first start; a restart models a link coming back.
      const startedAt = now();
      for (const dev of byId.values()) dev.restart(startedAt);
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
    for (const dev of byId.values()) dev.evaluate();
    log.info({ host, port: boundPort, devices: [...byId.values()].map((d) => `${d.id}@${d.unitId}`) }, 'modbus simulator listening');
    return { host, port: boundPort };
  }

  // ---- the vector served by ServerTCP; callback style so that a request can go unanswered ----

  /** The device of a unit id, or answers for the missing one (0x0B, or silence) and returns undefined. */
  function unit(unitId: number, fc: string, fail: (err: Error) => void): SimDevice | undefined {
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
    dev.evaluate();
    const regs = dev.image[table];
    if (addr + len > regs.length) {
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `${table} ${addr}+${len} beyond ${regs.length}`), []);
    }
    cb(null, regs.slice(addr, addr + len));
  }

  function readBit(table: 'coils' | 'discrete', addr: number, unitId: number, cb: (err: Error | null, v: boolean) => void): void {
    const dev = unit(unitId, table === 'coils' ? 'FC1' : 'FC2', (e) => cb(e, false));
    if (!dev) return;
    dev.evaluate();
    const bits = dev.image[table];
    // 6.1 / 6.2: start + quantity beyond the map, exception 2 (ServerTCP asks bit by bit).
    if (addr >= bits.length) return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `${table} ${addr} beyond ${bits.length}`), false);
    cb(null, bits[addr]);
  }

  function writeRegisters(addr: number, values: number[], unitId: number, fc: 'FC6' | 'FC16', cb: (err: Error | null) => void): void {
    const dev = unit(unitId, fc, cb);
    if (!dev) return;
    if (values.length < 1 || values.length > MAX_WRITE_REGISTERS) {
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_VALUE, `quantity ${values.length}`));
    }
    // 6.6 / 6.12: an address the device does not map, or maps read-only, answers exception 2.
    for (let a = addr; a < addr + values.length; a++) {
      if (a >= dev.image.holding.length || !dev.writable('holding', a, writes === 'writable')) {
        log.info({ device: dev.id, fc, addr: a }, 'write to a read-only or unmapped register refused');
        return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `holding ${a} is not writable`));
      }
    }
    dev.evaluate();
    values.forEach((v, i) => { dev.image.holding[addr + i] = v & 0xffff; });
    const points = dev.hold('holding', addr, values.length);
    log.info({ device: dev.id, fc, addr, values, points }, 'registers written by a master');
    cb(null);
  }

  function writeCoil(addr: number, value: boolean, unitId: number, cb: (err: Error | null) => void): void {
    const dev = unit(unitId, 'FC5', cb);
    if (!dev) return;
    if (addr >= dev.image.coils.length || !dev.writable('coils', addr, writes === 'writable')) {
      log.info({ device: dev.id, fc: 'FC5', addr }, 'write to a read-only or unmapped coil refused');
      return cb(new ExceptionError(ModbusException.ILLEGAL_DATA_ADDRESS, `coil ${addr} is not writable`));
    }
    dev.evaluate();
    dev.image.coils[addr] = value;
    const points = dev.hold('coils', addr, 1);
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
      return device(deviceId).value(key);
    },

    set(deviceId, key, value) {
      device(deviceId).set(key, value);
      log.info({ device: deviceId, point: key, value }, 'point set and held');
    },

    registers(deviceId) {
      const dev = device(deviceId);
      dev.evaluate();
      return {
        holding: [...dev.image.holding], input: [...dev.image.input],
        coils: [...dev.image.coils], discrete: [...dev.image.discrete],
      };
    },
  };
}
