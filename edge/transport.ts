import ModbusSerial from 'modbus-serial';

// modbus-serial is CommonJS with `module.exports.default = module.exports`: under NodeNext the
// default import is the module object, whose `default` is the client class at runtime and in types.
const ModbusRTU = ModbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusSerial.default>;
import type { Logger } from '../lib/log.ts';
import { CsError } from '../lib/errors.ts';
import type { Table } from '../devices/profile.ts';
import type { EdgeBus } from './config.ts';
import { EdgeErrors } from './errors.ts';

/**
 * A bus: one Modbus link (a TCP endpoint now; a serial port in a later issue) that carries
 * strictly one request at a time (DESIGN.md section 7; modbus-serial #361 and #264).
 * Every request goes through the transport's own queue, whoever calls it.
 * The link opens on the first request; after it fails to open or drops, requests fail fast
 * with BUS_DOWN until `reopenDelayMs` has passed, then the next request reopens it.
 */
export interface BusTransport {
  readonly busId: string;
  readonly isOpen: boolean;
  /** Reads `count` registers (holding, input) or bits (coil, discrete) of one slave. */
  read(unitId: number, table: Table, address: number, count: number): Promise<number[] | boolean[]>;
  /** Closes the link; queued and later requests fail with BUS_CLOSED. */
  close(): Promise<void>;
}

export interface TcpTransportOptions {
  bus: Pick<EdgeBus, 'id' | 'host' | 'port' | 'timeoutMs'>;
  logger: Logger;
  /** Wait after a failed open or a drop before trying to reopen; default the bus timeout. */
  reopenDelayMs?: number;
}

export function createTcpTransport(opts: TcpTransportOptions): BusTransport {
  const { bus } = opts;
  const log = opts.logger;
  const reopenDelayMs = opts.reopenDelayMs ?? bus.timeoutMs;
  let client: ModbusRTU | undefined;
  let tail: Promise<unknown> = Promise.resolve();
  let closed = false;
  let downTimer: NodeJS.Timeout | undefined;
  let downCause = '';

  /** Rejects the request in flight on the current connection when that connection goes away. */
  let lost: { promise: Promise<never>; reject: (err: Error) => void } | undefined;

  function drop(why: string): void {
    const c = client;
    client = undefined;
    // modbus-serial's destroy() cancels the timeouts of pending requests without settling them:
    // settle ours first, or a request in flight when the link drops would wait forever.
    lost?.reject(new Error(why));
    lost = undefined;
    if (c) {
      try {
        c.destroy(() => {});
      } catch { /* already gone */ }
    }
    if (!closed && !downTimer) {
      downCause = why;
      downTimer = setTimeout(() => { downTimer = undefined; }, reopenDelayMs);
      downTimer.unref();
    }
  }

  async function open(): Promise<ModbusRTU> {
    if (client?.isOpen) return client;
    if (client) drop('connection lost');
    if (downTimer) {
      throw new CsError(EdgeErrors.BUS_DOWN, `bus ${bus.id} (${bus.host}:${bus.port}) is down: ${downCause}`, { bus: bus.id });
    }
    const c = new ModbusRTU();
    c.setTimeout(bus.timeoutMs);
    c.on('error', (err: unknown) => log.debug({ err }, 'modbus client error'));
    let guard: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.connectTCP(bus.host, { port: bus.port }),
        new Promise<never>((_, reject) => {
          guard = setTimeout(() => reject(new Error(`connect timed out after ${bus.timeoutMs} ms`)), bus.timeoutMs);
        }),
      ]);
    } catch (err) {
      client = c;
      drop(`open failed: ${(err as Error).message}`);
      log.warn({ err: (err as Error).message }, 'bus open failed');
      throw new CsError(EdgeErrors.BUS_OPEN, `bus ${bus.id}: cannot open ${bus.host}:${bus.port}: ${(err as Error).message}`, { bus: bus.id });
    } finally {
      clearTimeout(guard);
    }
    if (closed) {
      c.destroy(() => {});
      throw new CsError(EdgeErrors.BUS_CLOSED, `bus ${bus.id} is closed`, { bus: bus.id });
    }
    c.on('close', () => {
      if (client === c) {
        log.warn('bus connection closed');
        drop('connection closed by peer');
      }
    });
    client = c;
    let reject!: (err: Error) => void;
    const promise = new Promise<never>((_, rej) => { reject = rej; });
    promise.catch(() => undefined);
    lost = { promise, reject };
    log.info({ host: bus.host, port: bus.port }, 'bus open');
    return c;
  }

  async function readOnce(unitId: number, table: Table, address: number, count: number): Promise<number[] | boolean[]> {
    if (closed) throw new CsError(EdgeErrors.BUS_CLOSED, `bus ${bus.id} is closed`, { bus: bus.id });
    const c = await open();
    c.setID(unitId);
    const request = (): Promise<number[] | boolean[]> => {
      switch (table) {
        case 'holding': return c.readHoldingRegisters(address, count).then((r) => r.data);
        case 'input': return c.readInputRegisters(address, count).then((r) => r.data);
        case 'coil': return c.readCoils(address, count).then((r) => r.data.slice(0, count));
        case 'discrete': return c.readDiscreteInputs(address, count).then((r) => r.data.slice(0, count));
      }
    };
    // modbus-serial times the request out itself; the guard only backs that up.
    let guard: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        request(),
        lost!.promise,
        new Promise<never>((_, reject) => {
          guard = setTimeout(() => reject(new Error(`no answer within ${bus.timeoutMs} ms`)), bus.timeoutMs + 250);
        }),
      ]);
    } catch (err) {
      const e = err as Error & { errno?: string; modbusCode?: number };
      // A timeout or exception leaves a TCP link usable (transaction ids match replies);
      // a link that is no longer open is dropped and reopened later.
      if (!c.isOpen && client === c) drop(`connection lost: ${e.message}`);
      throw new CsError(EdgeErrors.READ_FAILED, `bus ${bus.id} unit ${unitId}: read ${table} ${address}+${count} failed: ${e.message}`, {
        bus: bus.id, unitId, table, address, count, errno: e.errno, modbusCode: e.modbusCode,
      });
    } finally {
      clearTimeout(guard);
    }
  }

  return {
    busId: bus.id,
    get isOpen() { return Boolean(client?.isOpen); },
    read(unitId, table, address, count) {
      const run = tail.then(() => readOnce(unitId, table, address, count));
      tail = run.catch(() => undefined);
      return run;
    },
    async close() {
      closed = true;
      if (downTimer) clearTimeout(downTimer);
      downTimer = undefined;
      await tail;
      const c = client;
      client = undefined;
      if (c) {
        // Modbus TCP has no closing handshake: destroying the socket is the clean end.
        await new Promise<void>((resolve) => c.destroy(() => resolve()));
      }
    },
  };
}
