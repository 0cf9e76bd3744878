import type { Logger } from '../lib/log.ts';
import { CsError } from '../lib/errors.ts';
import { decodePoint, type EngValue } from '../devices/codec.ts';
import type { Profile } from '../devices/profile.ts';
import type { BusTransport } from './transport.ts';
import type { ReadBlock } from './plan.ts';
import { EdgeErrors } from './errors.ts';

/**
 * The poll loop of one bus: each device on its own interval, one device at a time on the bus
 * (and one request at a time, by the transport), buses independent of each other.
 * A device that fails is counted and skipped; it never stops the loop.
 * Seam for the later issue: per-device circuit breakers plug in at `pollDevice`.
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
}

export interface BusPollerOptions {
  busId: string;
  transport: BusTransport;
  devices: PolledDevice[];
  logger: Logger;
  /** Called with each decoded reading, in poll order; its promise settles when the reading is published. */
  onReading: (reading: DeviceReading) => Promise<void>;
}

export interface BusStats { ok: number; errors: number }

export interface BusPoller {
  start(): void;
  /** Clears every timer and waits for the device being polled (not for publishes); closes nothing it does not own. */
  stop(): Promise<void>;
  /** Polls every device of the bus once, now; resolves when each reading is published or its device failed. */
  pollAll(): Promise<void>;
  stats(): BusStats;
}

interface DeviceState {
  dev: PolledDevice;
  log: Logger;
  timer?: NodeJS.Timeout;
  /** A poll queued on the bus and not started yet: later requests join it. */
  queued?: Promise<void>;
  failing: boolean;
}

export function createBusPoller(opts: BusPollerOptions): BusPoller {
  const { transport, logger } = opts;
  const stats: BusStats = { ok: 0, errors: 0 };
  const states = opts.devices.map<DeviceState>((dev) => ({ dev, log: logger.child({ device: dev.id }), failing: false }));
  let tail: Promise<unknown> = Promise.resolve();
  let running = false;

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

  /** One poll of one device on the bus queue; resolves once its reading is published (or it failed). */
  function pollDevice(st: DeviceState): Promise<void> {
    if (st.queued) return st.queued;
    let published: Promise<void> = Promise.resolve();
    const task = tail.then(async () => {
      st.queued = undefined;
      if (!running) return;
      try {
        const reading = await readDevice(st.dev);
        stats.ok += 1;
        if (st.failing) st.log.info('device answers again');
        st.failing = false;
        published = opts.onReading(reading);
      } catch (err) {
        stats.errors += 1;
        const e = err as CsError;
        // Warn once when a device starts failing, then quietly: a dead slave must not flood the log.
        if (!st.failing) st.log.warn({ code: e.code, err: e.message }, 'device poll failed');
        else st.log.debug({ code: e.code, err: e.message }, 'device poll failed');
        st.failing = true;
      }
    });
    tail = task;
    const done = task.then(() => published).catch((err) => {
      st.log.warn({ err: (err as Error).message }, 'reading not published');
    });
    st.queued = done;
    return done;
  }

  function arm(st: DeviceState, delay: number): void {
    if (!running) return;
    st.timer = setTimeout(() => {
      // Fixed rate: the next poll is due one interval after this one was due.
      arm(st, st.dev.pollMs);
      void pollDevice(st);
    }, delay);
  }

  return {
    start() {
      if (running) return;
      running = true;
      // Spread first polls over the interval so that devices do not all come due at once.
      states.forEach((st, i) => arm(st, Math.floor((st.dev.pollMs * i) / Math.max(states.length, 1))));
    },
    async stop() {
      running = false;
      for (const st of states) {
        clearTimeout(st.timer);
        st.timer = undefined;
      }
      await tail.catch(() => undefined);
    },
    async pollAll() {
      if (!running) throw new CsError(EdgeErrors.STATE, `bus ${opts.busId} is not polling`);
      await Promise.all(states.map((st) => pollDevice(st)));
    },
    stats: () => ({ ...stats }),
  };
}
