import type { Logger } from '../lib/log.ts';
import { CsError } from '../lib/errors.ts';
import { decodePoint, encodePoint, type EngValue } from '../devices/codec.ts';
import { getPoint, protocolAddress, type Profile } from '../devices/profile.ts';
import type { BusTransport } from './transport.ts';
import type { ReadBlock } from './plan.ts';
import { EdgeErrors } from './errors.ts';
import { FAULT_KINDS, ModbusFault, type FaultKind } from './modbus.ts';

/**
 * The poll loop of one bus: each device on its own interval, one device at a time on the bus
 * (and one request at a time, by the transport), buses independent of each other.
 *
 * Per-slave health and a circuit breaker (docs/architecture.md#modbus-and-its-physical-limits: mandatory): every fault is counted
 * under its own name; `failures` consecutive faults open the slave's breaker, and while it is open
 * the slave is skipped without touching the bus, so a dead slave costs its neighbours nothing
 * (thingsboard-gateway #474, node-red-contrib-modbus #288, telegraf #11782). When the backoff has
 * passed, the next due poll is a single probe: success closes the breaker, failure doubles the
 * backoff up to `maxBackoffMs`. A bus that is down (link lost) is the transport's business and is
 * counted as `busDown`, not held against its slaves.
 */

export interface PolledDevice {
  id: string;
  profile: Profile;
  unitId: number;
  pollMs: number;
  blocks: ReadBlock[];
}

export interface DeviceReading {
  device: string;
  values: Record<string, EngValue>;
  /** `uncertain` when some point could not be decoded (NaN, infinity) and was left out. */
  quality: 'good' | 'uncertain';
  /** Asked for (report-now, after a write): report whatever the deadbands say. */
  forced?: boolean;
}

export interface BreakerOptions { failures: number; backoffMs: number; maxBackoffMs: number }

export interface BusPollerOptions {
  busId: string;
  transport: BusTransport;
  devices: PolledDevice[];
  logger: Logger;
  /** Called with each decoded reading, in poll order; its promise settles when the reading is accepted. */
  onReading: (reading: DeviceReading) => Promise<void>;
  breaker?: BreakerOptions;
  /** Clock of the breaker and health times; default Date.now. */
  now?: () => number;
  /** Called after each device poll that touched the bus, with its duration (metrics). */
  onPolled?: (device: string, ms: number) => void;
  /** Called when a pass over the bus ends, with its duration: from its first poll's start until every device
   * (on a finite interval; else every device) was polled once: answered, failed or skipped by its breaker. */
  onPass?: (ms: number) => void;
}

export interface BusStats { ok: number; errors: number }

export type SlaveCounters = Record<FaultKind | 'ok' | 'busDown' | 'decode' | 'skipped' | 'probes', number>;

export interface SlaveHealth extends SlaveCounters {
  device: string;
  unitId: number;
  /** closed: polled normally; open: skipped until `nextProbe`; half-open: the next poll is a probe. */
  breaker: 'closed' | 'open' | 'half-open';
  consecutiveFaults: number;
  backoffMs: number;
  nextProbe?: string;
  lastFault?: string;
}

export interface BusPoller {
  start(): void;
  /** Clears every timer and waits for the device being polled (not for publishes); closes nothing it does not own. */
  stop(): Promise<void>;
  /** Polls every device of the bus once, now; resolves when each reading is accepted or its device failed or was skipped. */
  pollAll(forced?: boolean): Promise<void>;
  /** Polls one device now. */
  pollDevice(deviceId: string, forced?: boolean): Promise<void>;
  /**
   * Replaces the devices of the bus while it runs (edge/buses.ts): a device that stays (same unit id and
   * read plan) keeps its timer, counters and breaker; a new or changed one is polled at once, then on its
   * interval; a removed one is never polled again (a poll of it already on the bus finishes).
   */
  setDevices(devices: PolledDevice[]): void;
  /** Sets each device's poll interval; a device whose next poll is further away than its new interval is re-armed now. */
  retime(intervalOf: (dev: PolledDevice) => number): void;
  /** Writes an engineering value to a point through the bus queue, with the profile's codec. */
  write(deviceId: string, key: string, value: EngValue): Promise<void>;
  stats(): BusStats;
  health(): SlaveHealth[];
  hasDevice(deviceId: string): boolean;
}

interface DeviceState {
  dev: PolledDevice;
  log: Logger;
  timer?: NodeJS.Timeout;
  interval: number;
  dueAt: number;
  /** A poll queued on the bus and not started yet: later requests join it. */
  queued?: Promise<void>;
  queuedForced: boolean;
  h: SlaveCounters;
  breaker: SlaveHealth['breaker'];
  consecutive: number;
  backoffMs: number;
  nextProbeAt: number;
  lastFault?: string;
  /** Taken off the bus by setDevices. */
  removed?: boolean;
}

const DEFAULT_BREAKER: BreakerOptions = { failures: 3, backoffMs: 2000, maxBackoffMs: 60_000 };

function zeroCounters(): SlaveCounters {
  const c = { ok: 0, busDown: 0, decode: 0, skipped: 0, probes: 0 } as SlaveCounters;
  for (const k of FAULT_KINDS) c[k] = 0;
  return c;
}

export function createBusPoller(opts: BusPollerOptions): BusPoller {
  const { transport, logger } = opts;
  const now = opts.now ?? Date.now;
  const brk = opts.breaker ?? DEFAULT_BREAKER;
  const stats: BusStats = { ok: 0, errors: 0 };
  const newState = (dev: PolledDevice): DeviceState => ({
    dev, log: logger.child({ device: dev.id }), interval: dev.pollMs, dueAt: 0, queuedForced: false,
    h: zeroCounters(), breaker: 'closed', consecutive: 0, backoffMs: brk.backoffMs, nextProbeAt: 0,
  });
  const states = opts.devices.map(newState);
  const byId = new Map(states.map((s) => [s.dev.id, s]));
  let tail: Promise<unknown> = Promise.resolve();
  let running = false;
  let passStart: number | undefined;
  const visited = new Set<DeviceState>();
  /** A device's poll ended: the pass ends when every device of it was polled since it began. */
  function visit(st: DeviceState, t0: number): void {
    passStart ??= t0;
    visited.add(st);
    const timed = states.filter((s) => Number.isFinite(s.interval));
    if ((timed.length ? timed : states).some((s) => !visited.has(s))) return;
    opts.onPass?.(performance.now() - passStart);
    passStart = undefined;
    visited.clear();
  }

  async function readDevice(dev: PolledDevice): Promise<DeviceReading> {
    const values: Record<string, EngValue> = {};
    let quality: DeviceReading['quality'] = 'good';
    for (const block of dev.blocks) {
      const data = await transport.read(dev.unitId, block.table, block.address, block.count);
      for (const { point, offset, count } of block.points) {
        let v: EngValue;
        try {
          v = decodePoint(point, data.slice(offset, offset + count) as number[] | boolean[], dev.profile.order);
        } catch (err) {
          throw new CsError(EdgeErrors.DECODE_FAILED, `device ${dev.id} point ${point.key}: ${(err as Error).message}`, { device: dev.id, point: point.key });
        }
        if (typeof v === 'number' && !Number.isFinite(v)) {
          quality = 'uncertain';
          continue;
        }
        values[point.key] = v;
      }
    }
    if (Object.keys(values).length === 0) {
      throw new CsError(EdgeErrors.DECODE_FAILED, `device ${dev.id}: no point decoded to a finite value`, { device: dev.id });
    }
    return { device: dev.id, values, quality };
  }

  function onSuccess(st: DeviceState): void {
    st.h.ok += 1;
    stats.ok += 1;
    if (st.breaker !== 'closed' || st.consecutive > 0) st.log.info({ after: st.consecutive }, 'device answers again');
    st.breaker = 'closed';
    st.consecutive = 0;
    st.backoffMs = brk.backoffMs;
  }

  function onFailure(st: DeviceState, err: unknown, probe: boolean): void {
    stats.errors += 1;
    const e = err as CsError;
    if (err instanceof ModbusFault) st.h[err.kind] += 1;
    else if (e.code === EdgeErrors.DECODE_FAILED) st.h.decode += 1;
    else {
      // The link is down (or closing): the transport reopens it; not this slave's fault.
      st.h.busDown += 1;
      st.lastFault = e.message;
      return;
    }
    st.lastFault = e.message;
    st.consecutive += 1;
    const t = now();
    if (probe) {
      st.backoffMs = Math.min(st.backoffMs * 2, brk.maxBackoffMs);
      st.breaker = 'open';
      st.nextProbeAt = t + st.backoffMs;
      st.log.debug({ code: e.code, err: e.message, backoffMs: st.backoffMs }, 'probe failed; backing off');
    } else if (st.consecutive >= brk.failures) {
      st.breaker = 'open';
      st.backoffMs = brk.backoffMs;
      st.nextProbeAt = t + st.backoffMs;
      st.log.warn({ code: e.code, err: e.message, faults: st.consecutive, backoffMs: st.backoffMs }, 'device failing; breaker open, probing on backoff');
    } else if (st.consecutive === 1) {
      st.log.warn({ code: e.code, err: e.message }, 'device poll failed');
    } else {
      st.log.debug({ code: e.code, err: e.message }, 'device poll failed');
    }
  }

  /** One poll of one device on the bus queue; resolves once its reading is accepted (or it failed or was skipped). */
  function pollState(st: DeviceState, forced = false): Promise<void> {
    if (forced) st.queuedForced = true;
    if (st.queued) return st.queued;
    let accepted: Promise<void> = Promise.resolve();
    const task = tail.then(async () => {
      st.queued = undefined;
      const isForced = st.queuedForced;
      st.queuedForced = false;
      if (!running || st.removed) return;
      const t0 = performance.now();
      let probe = false;
      if (st.breaker !== 'closed') {
        if (now() < st.nextProbeAt) {
          st.h.skipped += 1;
          visit(st, t0);
          return;
        }
        st.breaker = 'half-open';
        st.h.probes += 1;
        probe = true;
      }
      try {
        const reading = await readDevice(st.dev);
        onSuccess(st);
        accepted = opts.onReading(isForced ? { ...reading, forced: true } : reading);
      } catch (err) {
        onFailure(st, err, probe);
      }
      opts.onPolled?.(st.dev.id, performance.now() - t0);
      visit(st, t0);
    });
    tail = task;
    const done = task.then(() => accepted).catch((err) => {
      st.log.warn({ err: (err as Error).message }, 'reading not accepted');
    });
    st.queued = done;
    return done;
  }

  function arm(st: DeviceState, delay: number): void {
    // A device with an infinite interval is polled only on request (pollAll, pollDevice).
    if (!running || st.removed || !Number.isFinite(st.interval)) return;
    clearTimeout(st.timer);
    st.dueAt = Date.now() + delay;
    st.timer = setTimeout(() => {
      // Fixed rate: the next poll is due one interval after this one was due (lateness does not add up).
      arm(st, Math.max(0, st.dueAt + st.interval - Date.now()));
      void pollState(st);
    }, delay);
  }

  function state(deviceId: string): DeviceState {
    const st = byId.get(deviceId);
    if (!st) throw new CsError(EdgeErrors.CMD_REJECTED, `bus ${opts.busId} has no device "${deviceId}"`, { device: deviceId });
    return st;
  }

  async function write(deviceId: string, key: string, value: EngValue): Promise<void> {
    const st = state(deviceId);
    const { profile, unitId } = st.dev;
    let point;
    try {
      point = getPoint(profile, key);
    } catch (err) {
      throw new CsError(EdgeErrors.CMD_REJECTED, (err as Error).message, { device: deviceId, point: key });
    }
    if (!point.writable) throw new CsError(EdgeErrors.CMD_REJECTED, `point ${key} of ${deviceId} is not writable (profile ${profile.id})`, { device: deviceId, point: key });
    if (point.table === 'input' || point.table === 'discrete') throw new CsError(EdgeErrors.CMD_REJECTED, `point ${key} is in the read-only ${point.table} table`);
    const address = protocolAddress(profile, point);
    const p = point;
    // One unit on the bus queue: a read-modify-write of a bit must not interleave with another write.
    const task = tail.then(async () => {
      if (p.table === 'coil') {
        await transport.request(unitId, { kind: 'write-coil', address, value: encodePoint(p, value, profile.order) as boolean });
        return;
      }
      // A bit inside a register: read the register and keep its other bits (read-modify-write).
      const current = p.type === 'bits' ? ((await transport.read(unitId, 'holding', address, 1)) as number[])[0] : 0;
      const regs = encodePoint(p, value, profile.order, current) as number[];
      // The same codec encodes the write as decodes the read: byte and word order both ways (thingsboard-gateway #342).
      if (regs.length === 1) await transport.request(unitId, { kind: 'write-register', address, value: regs[0] });
      else await transport.request(unitId, { kind: 'write-registers', address, values: regs });
    });
    tail = task.catch(() => undefined);
    await task;
  }

  return {
    start() {
      if (running) return;
      running = true;
      // Spread first polls over the interval so that devices do not all come due at once.
      states.forEach((st, i) => arm(st, Math.floor((st.interval * i) / Math.max(states.length, 1))));
    },
    async stop() {
      running = false;
      for (const st of states) {
        clearTimeout(st.timer);
        st.timer = undefined;
      }
      await tail.catch(() => undefined);
    },
    async pollAll(forced = false) {
      if (!running) throw new CsError(EdgeErrors.STATE, `bus ${opts.busId} is not polling`);
      await Promise.all(states.map((st) => pollState(st, forced)));
    },
    async pollDevice(deviceId, forced = false) {
      if (!running) throw new CsError(EdgeErrors.STATE, `bus ${opts.busId} is not polling`);
      await pollState(state(deviceId), forced);
    },
    setDevices(devices) {
      const same = (a: PolledDevice, b: PolledDevice) => a.unitId === b.unitId && a.profile.id === b.profile.id
        && JSON.stringify(a.blocks) === JSON.stringify(b.blocks);
      const fresh: DeviceState[] = [];
      const next = devices.map((dev) => {
        const old = byId.get(dev.id);
        if (old && same(old.dev, dev)) return Object.assign(old, { dev });
        const st = newState(dev);
        fresh.push(st);
        return st;
      });
      const kept = new Set(next);
      for (const st of states) {
        if (kept.has(st)) continue;
        st.removed = true;
        clearTimeout(st.timer);
        st.timer = undefined;
        visited.delete(st);
      }
      states.splice(0, states.length, ...next);
      byId.clear();
      for (const st of states) byId.set(st.dev.id, st);
      for (const st of fresh) arm(st, 0);
    },
    retime(intervalOf) {
      for (const st of states) {
        st.interval = intervalOf(st.dev);
        if (running && st.dueAt - Date.now() > st.interval) arm(st, st.interval);
      }
    },
    write,
    stats: () => ({ ...stats }),
    health: () => states.map((st) => ({
      device: st.dev.id, unitId: st.dev.unitId, ...st.h, breaker: st.breaker, consecutiveFaults: st.consecutive, backoffMs: st.backoffMs,
      ...(st.breaker !== 'closed' ? { nextProbe: new Date(st.nextProbeAt).toISOString() } : {}),
      ...(st.lastFault ? { lastFault: st.lastFault } : {}),
    })),
    hasDevice: (id) => byId.has(id),
  };
}
