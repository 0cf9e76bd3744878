import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import { CsError } from '../lib/errors.ts';
import { silentLogger, type Logger } from '../lib/log.ts';
import type { EngValue } from './codec.ts';
import type { Scenario } from './district.ts';
import { DeviceErrors } from './errors.ts';
import type { Profile } from './profile.ts';
import { buildSimDevice, checkDeviceSpec, type SimDevice } from './sim-device.ts';

/**
 * A Modbus RTU line simulator with fault injection: several slaves on one RS-485 line, served on a
 * serial port (one end of a `socat` pseudo-terminal pair) or on a TCP port (RTU over TCP, as a
 * serial server forwards it). Each slave can be told to misbehave the ways field devices do
 * (docs/targets.md#reliability-and-security-figures): stay dead, answer late, answer with a bad CRC, answer as another unit id,
 * answer a Modbus exception, or stop mid-frame.
 *
 * Requests are framed by their function code (Modbus over Serial Line 2.5.1) and checked by CRC;
 * a request for a unit id not on the line gets no answer, as on a real bus. Each slave is a simulated
 * device (sim-device.ts, as in the TCP simulator): its points follow their `sim` behaviour and its
 * scenario, a point written by a master or `set()` is held, and what the edge decodes is what the
 * shared codec encoded.
 * A pty ignores baud and parity; `baudRate` delays each reply by its wire time (11 bits a character)
 * and the silence that ends the request (the master keeps the silence before its next request).
 */

export type RtuFault = 'none' | 'dead' | 'slow' | 'crc' | 'wrong-unit' | 'exception' | 'truncated';

export interface RtuSlaveSpec {
  unitId: number;
  profile: Profile;
  /** Used for string points' initial value and in logs. */
  id?: string;
  fault?: RtuFault;
  /** A scripted behaviour of one point (the district's `scenario`). */
  scenario?: Scenario;
}

export interface RtuSimOptions {
  /** Serial port to serve on (e.g. the far end of a socat pty pair). */
  path?: string;
  /** Or a TCP port to serve RTU frames on (0 = any free port; a restart binds the same one). */
  tcpPort?: number;
  host?: string;
  slaves: RtuSlaveSpec[];
  /** The slaves' reply time; default 2 ms. */
  replyDelayMs?: number;
  /** Reply time of a `slow` slave; default 600 ms. */
  slowDelayMs?: number;
  /** Exception code of an `exception` slave; default 4 (server device failure). */
  exceptionCode?: number;
  /** When set, each reply is also delayed by the request's and its own wire time at this baud, plus the request's end-of-frame silence. */
  baudRate?: number;
  logger?: Logger;
  now?: () => number;
  /** How often behaviours update, on the `now` clock; default 250 ms. */
  tickMs?: number;
  /** Seed of the noise (each slave draws from its own stream). Default 1. */
  seed?: number;
}

export interface RtuSim {
  start(): Promise<{ port?: number }>;
  stop(): Promise<void>;
  readonly port: number;
  setFault(unitId: number, fault: RtuFault): void;
  set(unitId: number, key: string, value: EngValue): void;
  value(unitId: number, key: string): EngValue;
  /** Requests addressed to a unit (answered or not) since start. */
  requests(unitId: number): number;
}

interface Slave {
  spec: RtuSlaveSpec;
  dev: SimDevice;
  fault: RtuFault;
  requests: number;
}

export function crc16(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function withCrc(body: Buffer): Buffer {
  const b = Buffer.alloc(body.length + 2);
  body.copy(b);
  b.writeUInt16LE(crc16(body), body.length);
  return b;
}

/** Length of a request frame from its first bytes, or undefined while unknown. */
function requestLength(buf: Buffer): number | undefined {
  if (buf.length < 2) return undefined;
  const fc = buf[1];
  if (fc >= 1 && fc <= 6) return 8;
  if (fc === 15 || fc === 16) return buf.length >= 7 ? 9 + buf[6] : undefined;
  return -1;
}

export function buildRtuSim(opts: RtuSimOptions): RtuSim {
  const log = (opts.logger ?? silentLogger()).child({ mod: 'rtu-sim' });
  const replyDelayMs = opts.replyDelayMs ?? 2;
  const slowDelayMs = opts.slowDelayMs ?? 600;
  const exceptionCode = opts.exceptionCode ?? 4;
  if (!opts.path && opts.tcpPort === undefined) throw new CsError(DeviceErrors.SIM_CONFIG_INVALID, 'rtu simulator needs a serial path or a tcpPort');
  const now = opts.now ?? Date.now;
  const slaves = new Map<number, Slave>();
  const ids = new Set<string>();
  const units = new Map<number, string>();
  opts.slaves.forEach((spec, i) => {
    const at = `slaves[${i}]`;
    if (slaves.has(spec?.unitId)) throw new CsError(DeviceErrors.SIM_CONFIG_INVALID, `unit id ${spec.unitId} twice on one line`);
    const s = { ...spec, id: spec?.id ?? `unit-${spec?.unitId}` };
    checkDeviceSpec(s, at, ids, units);
    const dev = buildSimDevice(s, { at, seed: opts.seed ?? 1, tickMs: opts.tickMs ?? 250, now, log });
    slaves.set(spec.unitId, { spec, dev, fault: spec.fault ?? 'none', requests: 0 });
  });
  let serial: SerialPort | undefined;
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let boundPort = opts.tcpPort ?? 0;
  let everStarted = false;

  function slave(unitId: number): Slave {
    const s = slaves.get(unitId);
    if (!s) throw new CsError(DeviceErrors.SIM_DEVICE_UNKNOWN, `no slave with unit id ${unitId}`);
    return s;
  }

  /** The reply PDU to a request PDU, or an exception code. */
  function serve(s: Slave, pdu: Buffer): Buffer | number {
    const fc = pdu[0];
    const addr = pdu.readUInt16BE(1);
    const { dev } = s;
    const img = dev.image;
    dev.evaluate();
    // 6.5, 6.6, 6.11, 6.12: a register or coil that no point maps answers exception 2.
    const unmapped = (table: 'holding' | 'coils', n: number) => {
      for (let a = addr; a < addr + n; a++) if (!dev.writable(table, a, false)) return true;
      return false;
    };
    switch (fc) {
      case 1: case 2: {
        const qty = pdu.readUInt16BE(3);
        const bits = fc === 1 ? img.coils : img.discrete;
        if (qty < 1 || qty > 2000) return 3;
        if (addr + qty > bits.length) return 2;
        const out = Buffer.alloc(2 + Math.ceil(qty / 8));
        out[0] = fc; out[1] = out.length - 2;
        for (let i = 0; i < qty; i++) if (bits[addr + i]) out[2 + (i >> 3)] |= 1 << (i & 7);
        return out;
      }
      case 3: case 4: {
        const qty = pdu.readUInt16BE(3);
        const regs = fc === 3 ? img.holding : img.input;
        if (qty < 1 || qty > 125) return 3;
        if (addr + qty > regs.length) return 2;
        const out = Buffer.alloc(2 + qty * 2);
        out[0] = fc; out[1] = qty * 2;
        for (let i = 0; i < qty; i++) out.writeUInt16BE(regs[addr + i], 2 + i * 2);
        return out;
      }
      case 5: {
        if (unmapped('coils', 1)) return 2;
        img.coils[addr] = pdu.readUInt16BE(3) === 0xff00;
        dev.hold('coils', addr, 1);
        return Buffer.from(pdu.subarray(0, 5));
      }
      case 6: {
        if (unmapped('holding', 1)) return 2;
        img.holding[addr] = pdu.readUInt16BE(3);
        dev.hold('holding', addr, 1);
        return Buffer.from(pdu.subarray(0, 5));
      }
      case 15: {
        const qty = pdu.readUInt16BE(3);
        if (qty < 1 || qty > 0x7b0) return 3;
        if (unmapped('coils', qty)) return 2;
        for (let i = 0; i < qty; i++) img.coils[addr + i] = ((pdu[6 + (i >> 3)] >> (i & 7)) & 1) === 1;
        dev.hold('coils', addr, qty);
        return Buffer.from(pdu.subarray(0, 5));
      }
      case 16: {
        const qty = pdu.readUInt16BE(3);
        if (qty < 1 || qty > 123) return 3;
        if (unmapped('holding', qty)) return 2;
        for (let i = 0; i < qty; i++) img.holding[addr + i] = pdu.readUInt16BE(6 + i * 2);
        dev.hold('holding', addr, qty);
        return Buffer.from(pdu.subarray(0, 5));
      }
      default:
        return 1;
    }
  }

  function later(ms: number, fn: () => void): void {
    const t = setTimeout(() => { timers.delete(t); fn(); }, ms);
    timers.add(t);
  }

  /** Handles one complete request frame; `send` writes to the line. */
  function onFrame(frame: Buffer, send: (b: Buffer) => void): void {
    if (crc16(frame.subarray(0, frame.length - 2)) !== frame.readUInt16LE(frame.length - 2)) {
      log.debug({ frame: frame.toString('hex') }, 'request with a bad CRC ignored');
      return;
    }
    const s = slaves.get(frame[0]);
    if (!s) return; // not on this line: nobody answers
    s.requests += 1;
    if (s.fault === 'dead') return;
    const pdu = frame.subarray(1, frame.length - 2);
    const out = serve(s, pdu);
    let body = typeof out === 'number' || s.fault === 'exception'
      ? Buffer.from([frame[0], pdu[0] | 0x80, typeof out === 'number' ? out : exceptionCode])
      : Buffer.concat([Buffer.from([frame[0]]), out]);
    if (s.fault === 'wrong-unit') body[0] = (frame[0] + 100) & 0xff;
    let reply = withCrc(body);
    if (s.fault === 'crc') reply.writeUInt16LE(reply.readUInt16LE(reply.length - 2) ^ 0xffff, reply.length - 2);
    if (s.fault === 'truncated') reply = reply.subarray(0, Math.max(3, Math.floor(reply.length / 2)));
    // The request's and the reply's time on the wire (a pty delivers both at once), and the
    // 3.5-character silence that ends the request before the slave may act on it (2.5.1.1).
    const baud = opts.baudRate;
    const wire = baud ? ((frame.length + reply.length) * 11 * 1000) / baud + (baud > 19200 ? 1.75 : (3.5 * 11 * 1000) / baud) : 0;
    later((s.fault === 'slow' ? slowDelayMs : replyDelayMs) + wire, () => send(reply));
    body = Buffer.alloc(0);
  }

  /** A request framer for one byte stream: frames by function code, resynchronises on silence. */
  function framer(send: (b: Buffer) => void) {
    let buf = Buffer.alloc(0);
    let lastAt = 0;
    return (chunk: Buffer) => {
      const t = Date.now();
      // More than 3.5 characters of silence ends a frame (2.5.1.1); a pty has no timing, so be generous.
      if (t - lastAt > 50) buf = Buffer.alloc(0);
      lastAt = t;
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const n = requestLength(buf);
        if (n === undefined || buf.length < n) return;
        if (n < 0) { buf = Buffer.alloc(0); return; }
        const frame = buf.subarray(0, n);
        buf = buf.subarray(n);
        onFrame(Buffer.from(frame), send);
      }
    };
  }

  return {
    get port() { return boundPort; },
    async start() {
      for (const s of slaves.values()) s.requests = 0;
      // The scenario clock runs from the first start; a restart models the line coming back.
      if (!everStarted) for (const s of slaves.values()) s.dev.restart(now());
      everStarted = true;
      if (opts.path) {
        const port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 9600, autoOpen: false, lock: false });
        await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
        port.on('data', framer((b) => { if (port.isOpen) port.write(b); }));
        port.on('error', (err) => log.debug({ err: err.message }, 'rtu sim port error'));
        serial = port;
        log.info({ path: opts.path }, 'rtu simulator on serial port');
        return {};
      }
      const srv = createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => undefined);
        sock.on('data', framer((b) => { if (!sock.destroyed) sock.write(b); }));
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(boundPort, opts.host ?? '127.0.0.1', () => { srv.off('error', reject); resolve(); });
      });
      boundPort = (srv.address() as AddressInfo).port;
      server = srv;
      log.info({ port: boundPort }, 'rtu simulator on tcp');
      return { port: boundPort };
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const port = serial;
      serial = undefined;
      if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
      const srv = server;
      server = undefined;
      if (srv) {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => srv.close(() => resolve()));
      }
    },
    setFault(unitId, fault) {
      slave(unitId).fault = fault;
    },
    set(unitId, key, value) {
      slave(unitId).dev.set(key, value);
    },
    value(unitId, key) {
      return slave(unitId).dev.value(key);
    },
    requests: (unitId) => slave(unitId).requests,
  };
}
