import { connect as netConnect, type Socket } from 'node:net';
import { SerialPort } from 'serialport';
import type { Logger } from '../lib/log.ts';
import { CsError } from '../lib/errors.ts';
import type { Table } from '../devices/profile.ts';
import type { EdgeBus } from './config.ts';
import { EdgeErrors } from './errors.ts';
import {
  decodeResponse, encodeRequest, mbapFrame, ModbusFault, rtuFrame, rtuReplyCollector, type ModbusRequest,
} from './modbus.ts';

/**
 * A bus: one Modbus link that carries strictly one request at a time (docs/architecture.md#modbus-and-its-physical-limits;
 * modbus-serial #361 and #264). Three kinds:
 * - `tcp`: Modbus TCP (MBAP) to one host and port, one connection, several unit ids behind it;
 * - `rtu`: Modbus RTU on a serial port (RS-485), baud, parity and stop bits per bus;
 * - `rtu-over-tcp`: RTU frames through a serial server's raw TCP port.
 * Every request goes through the transport's own queue, whoever calls it.
 * The link opens on the first request; when it fails to open or drops (a device powered off, a
 * USB adapter pulled, a pty removed), requests fail fast with BUS_DOWN until `reopenMs` has
 * passed, then the next request reopens it: the gateway never needs a restart (thingsboard-gateway
 * #829 and #1592, node-red-contrib-modbus #436).
 * Slave faults are thrown as ModbusFault (timeout, crc, exception, wrongUnit, truncated, badFrame);
 * link faults as CsError BUS_OPEN / BUS_DOWN / BUS_CLOSED.
 */
export interface BusTransport {
  readonly busId: string;
  readonly isOpen: boolean;
  /** Reads `count` registers (holding, input) or bits (coil, discrete) of one slave. */
  read(unitId: number, table: Table, address: number, count: number): Promise<number[] | boolean[]>;
  /** Any request (reads and writes FC 5, 6, 15, 16); resolves with the data read, [] for writes. */
  request(unitId: number, req: ModbusRequest): Promise<number[] | boolean[]>;
  stats(): LinkStats;
  /** Closes the link; queued and later requests fail with BUS_CLOSED. */
  close(): Promise<void>;
}

export interface LinkStats {
  /** Successful opens of the link (1 plus every reopen). */
  opens: number;
  openFailures: number;
  /** Times the open link went away (peer closed, port removed). */
  drops: number;
  requests: number;
  /** Replies that arrived after their request had timed out, discarded. */
  late: number;
  open: boolean;
}

export type TransportBus = Pick<EdgeBus, 'id' | 'timeoutMs'> & Partial<Omit<EdgeBus, 'id' | 'timeoutMs'>>;

export interface TransportOptions {
  bus: TransportBus;
  logger: Logger;
  /** Wait after a failed open or a drop before trying to reopen; default the bus's reopenMs, else its timeout. */
  reopenDelayMs?: number;
}

interface Link {
  write(b: Buffer): void;
  readonly open: boolean;
  close(): Promise<void>;
}

/** 11 bits per character (start, 8 data, parity or second stop, stop): Modbus over Serial Line 2.5.1. */
function charTimeMs(baud: number): number {
  return (11 * 1000) / baud;
}

/** Minimum silence between frames: 3.5 characters, fixed 1.75 ms above 19,200 baud (section 2.5.1.1). */
export function interFrameMs(baud: number): number {
  return baud > 19200 ? 1.75 : 3.5 * charTimeMs(baud);
}

/**
 * t1.5 is under 1 ms above 19,200 baud, but USB serial adapters deliver bytes in bursts (FTDI's
 * latency timer is 16 ms by default): 50 ms of silence inside a frame means it was cut short.
 */
export const RTU_FRAME_SILENCE_MS = 50;

/**
 * Runs `fn` after input already waiting on the sockets and ports has been read: a timer fires before
 * the poll phase of the same loop turn, so after a stalled event loop a reply that did arrive in
 * time would otherwise be reported as a timeout.
 */
function afterPendingInput(fn: () => void): void {
  setImmediate(fn);
}

function describeBus(bus: TransportBus): string {
  return bus.type === 'rtu' ? `${bus.path}` : `${bus.host ?? '127.0.0.1'}:${bus.port}`;
}

export function createBusTransport(opts: TransportOptions): BusTransport {
  const { bus } = opts;
  const type = bus.type ?? 'tcp';
  const log = opts.logger;
  const reopenDelayMs = opts.reopenDelayMs ?? bus.reopenMs ?? bus.timeoutMs;
  const where = describeBus(bus);
  const gapMs = bus.interRequestDelayMs ?? (type === 'rtu' ? Math.ceil(interFrameMs(bus.baudRate ?? 9600)) : 0);
  /** Silence that ends an RTU frame: on a serial line only (TCP may delay a segment; it keeps frames whole). */
  const silenceMs = type === 'rtu' ? RTU_FRAME_SILENCE_MS : Infinity;
  const stats: LinkStats = { opens: 0, openFailures: 0, drops: 0, requests: 0, late: 0, open: false };

  let link: Link | undefined;
  let tail: Promise<unknown> = Promise.resolve();
  let closed = false;
  let downTimer: NodeJS.Timeout | undefined;
  let downCause = '';
  let warnedDown = false;
  let lastActivity = 0;
  let tid = 0;
  /** The request waiting for its reply: gets the link's bytes and its end. */
  let waiter: { tid?: number; onData(b: Buffer): void; onClose(why: string): void } | undefined;
  /** MBAP stream buffer (frames may arrive split or several per chunk). */
  let rx = Buffer.alloc(0);
  /**
   * RTU units with requests that timed out recently, and how many: a frame from such a unit while
   * another is asked is that slow slave's late reply, not a wrong unit id of the one asked. Kept for a
   * while even after the unit answers again (its late reply may still be on its way).
   */
  const lateWindowMs = Math.max(2000, 4 * bus.timeoutMs);
  const timedOut = new Map<number, { count: number; until: number }>();
  const expectLate = (unit: number) => {
    const e = timedOut.get(unit);
    timedOut.set(unit, { count: (e && e.until > Date.now() ? e.count : 0) + 1, until: Date.now() + lateWindowMs });
  };
  const takeLate = (unit: number): boolean => {
    const e = timedOut.get(unit);
    if (!e || e.until < Date.now() || e.count <= 0) return false;
    e.count -= 1;
    return true;
  };

  function markDown(why: string): void {
    if (!closed && !downTimer) {
      downCause = why;
      downTimer = setTimeout(() => { downTimer = undefined; }, reopenDelayMs);
      downTimer.unref();
    }
  }

  function onLinkData(b: Buffer): void {
    lastActivity = Date.now();
    if (type !== 'tcp') {
      if (waiter) waiter.onData(b);
      else stats.late += 1; // bytes nobody asked for: discarded (the next request starts clean)
      return;
    }
    // MBAP: frames may arrive split or several to a chunk; cut them by their length field and hand
    // the one with the waiting transaction id over. Anything else is a late reply to a timed-out request.
    rx = rx.length ? Buffer.concat([rx, b]) : Buffer.from(b);
    while (rx.length >= 7) {
      const len = rx.readUInt16BE(4);
      if (rx.readUInt16BE(2) !== 0 || len < 2 || len > 254) {
        // No way to find the next frame boundary: drop the connection and resynchronise on a new one.
        rx = Buffer.alloc(0);
        log.warn('unparseable MBAP header; reconnecting');
        const l = link;
        if (l) { onLinkClose(l, 'unparseable MBAP header'); void l.close(); }
        return;
      }
      if (rx.length < 6 + len) return;
      const f = rx.subarray(0, 6 + len);
      rx = rx.subarray(6 + len);
      if (waiter && waiter.tid === f.readUInt16BE(0)) waiter.onData(f);
      else stats.late += 1;
    }
  }

  function onLinkClose(l: Link, why: string): void {
    if (link !== l) return;
    link = undefined;
    stats.drops += 1;
    stats.open = false;
    log.warn({ why }, 'bus link lost');
    waiter?.onClose(why);
    markDown(why);
  }

  async function openTcp(): Promise<Link> {
    const host = bus.host ?? '127.0.0.1';
    const sock: Socket = netConnect({ host, port: bus.port! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect timed out after ${bus.timeoutMs} ms`)); }, bus.timeoutMs);
      sock.once('connect', () => { clearTimeout(timer); resolve(); });
      sock.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
    sock.setNoDelay(true);
    let open = true;
    const l: Link = {
      write: (b) => { sock.write(b); },
      get open() { return open && !sock.destroyed; },
      close: () => new Promise<void>((resolve) => {
        open = false;
        if (sock.destroyed) return resolve();
        sock.once('close', () => resolve());
        sock.destroy();
      }),
    };
    sock.on('data', onLinkData);
    sock.on('error', (err) => log.debug({ err: err.message }, 'bus socket error'));
    sock.on('close', () => { open = false; onLinkClose(l, 'connection closed by peer'); });
    return l;
  }

  async function openSerial(): Promise<Link> {
    const port = new SerialPort({
      path: bus.path!, baudRate: bus.baudRate ?? 9600, parity: bus.parity ?? 'none', stopBits: bus.stopBits ?? 1,
      dataBits: 8, autoOpen: false, lock: bus.lock ?? true,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    let open = true;
    const l: Link = {
      write: (b) => {
        port.write(b, (err) => {
          // Writing to a port that went away (EIO on a removed pty or USB adapter): the link is lost.
          if (err && open) { open = false; onLinkClose(l, `serial write failed: ${err.message}`); void l.close(); }
        });
      },
      get open() { return open && port.isOpen; },
      close: () => new Promise<void>((resolve) => {
        open = false;
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
    };
    port.on('data', onLinkData);
    port.on('error', (err) => log.debug({ err: err.message }, 'serial port error'));
    port.on('close', (err?: Error & { disconnected?: boolean }) => {
      open = false;
      onLinkClose(l, err?.disconnected ? 'serial port disconnected' : 'serial port closed');
    });
    return l;
  }

  async function ensureOpen(): Promise<Link> {
    if (link?.open) return link;
    if (link) {
      const old = link;
      link = undefined;
      await old.close().catch(() => undefined);
    }
    if (downTimer) throw new CsError(EdgeErrors.BUS_DOWN, `bus ${bus.id} (${where}) is down: ${downCause}`, { bus: bus.id });
    let l: Link;
    try {
      l = type === 'rtu' ? await openSerial() : await openTcp();
    } catch (err) {
      stats.openFailures += 1;
      markDown(`open failed: ${(err as Error).message}`);
      // Warn on the first failure of an outage only: a port gone for hours must not flood the log.
      if (!warnedDown) log.warn({ err: (err as Error).message }, 'bus open failed; retrying quietly');
      else log.debug({ err: (err as Error).message }, 'bus open failed');
      warnedDown = true;
      throw new CsError(EdgeErrors.BUS_OPEN, `bus ${bus.id}: cannot open ${where}: ${(err as Error).message}`, { bus: bus.id });
    }
    if (closed) {
      await l.close();
      throw new CsError(EdgeErrors.BUS_CLOSED, `bus ${bus.id} is closed`, { bus: bus.id });
    }
    link = l;
    warnedDown = false;
    rx = Buffer.alloc(0);
    stats.opens += 1;
    stats.open = true;
    log.info({ where, type }, 'bus open');
    return l;
  }

  async function exec(unitId: number, req: ModbusRequest): Promise<number[] | boolean[]> {
    if (closed) throw new CsError(EdgeErrors.BUS_CLOSED, `bus ${bus.id} is closed`, { bus: bus.id });
    const l = await ensureOpen();
    // Inter-request delay: the line must be silent for 3.5 characters (RTU) or what the bus asks.
    const wait = lastActivity + gapMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const ctx = { bus: bus.id, unitId, req: req.kind === 'read' ? `${req.table} ${req.address}+${req.count}` : `${req.kind} ${req.address}` };
    const pdu = encodeRequest(req);
    stats.requests += 1;
    return await new Promise<number[] | boolean[]>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (err: Error | undefined, data?: number[] | boolean[]) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        waiter = undefined;
        lastActivity = Date.now();
        if (err) reject(err);
        else resolve(data!);
      };
      let frame: Buffer;
      if (type === 'tcp') {
        tid = (tid + 1) & 0xffff;
        const myTid = tid;
        frame = mbapFrame(myTid, unitId, pdu);
        waiter = {
          tid: myTid,
          onData(f) {
            // A whole MBAP frame with our transaction id (onLinkData cut it and matched the id).
            if (f[6] !== unitId) return finish(new ModbusFault('wrongUnit', `reply from unit ${f[6]}, asked unit ${unitId}`, { ...ctx, replyUnit: f[6] }));
            try {
              finish(undefined, decodeResponse(req, Buffer.from(f.subarray(7)), ctx));
            } catch (err) {
              finish(err as Error);
            }
          },
          onClose: (why) => finish(new CsError(EdgeErrors.BUS_DOWN, `bus ${bus.id}: ${why} during a request`, ctx)),
        };
      } else {
        frame = rtuFrame(unitId, pdu);
        const collector = rtuReplyCollector(unitId, req, ctx, silenceMs);
        waiter = {
          onData(b) {
            let chunk = b;
            for (;;) {
              try {
                const data = collector.push(chunk);
                if (data) finish(undefined, data);
                return;
              } catch (err) {
                const f = err as ModbusFault;
                const from = f.details?.replyUnit as number | undefined;
                if (f.kind === 'wrongUnit' && from !== undefined && takeLate(from)) {
                  // A slow slave's late answer to an earlier request: discard it, keep waiting.
                  stats.late += 1;
                  collector.skipFrame();
                  chunk = Buffer.alloc(0);
                  continue;
                }
                return finish(f);
              }
            }
          },
          onClose: (why) => finish(new CsError(EdgeErrors.BUS_DOWN, `bus ${bus.id}: ${why} during a request`, ctx)),
        };
        const me = waiter;
        timer = setTimeout(() => afterPendingInput(() => {
          if (waiter !== me) return;
          const fault = collector.expire(bus.timeoutMs);
          if (fault.kind === 'timeout' || fault.kind === 'truncated') expectLate(unitId);
          finish(fault);
        }), bus.timeoutMs);
      }
      if (type === 'tcp') {
        const me = waiter;
        timer = setTimeout(() => afterPendingInput(() => {
          if (waiter === me) finish(new ModbusFault('timeout', `no reply within ${bus.timeoutMs} ms`, ctx));
        }), bus.timeoutMs);
      }
      try {
        l.write(frame);
      } catch (err) {
        finish(new CsError(EdgeErrors.BUS_DOWN, `bus ${bus.id}: write failed: ${(err as Error).message}`, ctx));
      }
    });
  }

  function enqueue(unitId: number, req: ModbusRequest): Promise<number[] | boolean[]> {
    const run = tail.then(() => exec(unitId, req));
    tail = run.catch(() => undefined);
    return run;
  }

  return {
    busId: bus.id,
    get isOpen() { return Boolean(link?.open); },
    read: (unitId, table, address, count) => enqueue(unitId, { kind: 'read', table, address, count }),
    request: enqueue,
    stats: () => ({ ...stats, open: Boolean(link?.open) }),
    async close() {
      closed = true;
      if (downTimer) clearTimeout(downTimer);
      downTimer = undefined;
      await tail;
      const l = link;
      link = undefined;
      stats.open = false;
      // Modbus has no closing handshake: closing the socket or port is the clean end.
      if (l) await l.close();
    },
  };
}

