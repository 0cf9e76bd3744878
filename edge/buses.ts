import type { Logger } from '../lib/log.ts';
import type { Profile } from '../devices/profile.ts';
import type { EdgeConfig } from './config.ts';
import { planReads } from './plan.ts';
import { createBusPoller, type BusPoller, type DeviceReading, type PolledDevice } from './poller.ts';
import { createBusTransport, type BusTransport } from './transport.ts';

/**
 * The edge's buses and devices: one transport (one link) and one poller per bus. `apply` brings them
 * to a config, at start and again while the edge runs (`set-devices`, cmd-set-devices.ts): a bus that
 * is gone or whose settings changed is stopped and its link closed (a changed one is opened anew); a
 * new bus is opened; each bus that stays gets its new device list (poller.ts setDevices), so a device
 * added is polled at once, a removed one no more, a moved one on its new bus, and the others go on
 * untouched, with their counters and breakers.
 */

export type ConfiguredDevice = PolledDevice & { cfg: EdgeConfig['devices'][number] };

export interface BusSetDeps {
  profiles: Map<string, Profile>;
  logger: Logger;
  now: () => number;
  onReading: (r: DeviceReading) => Promise<void>;
  metrics: { observePoll(bus: string, ms: number): void; observePass(bus: string, ms: number): void };
  /** A device's current interval (its own, the gateway's, or fast mode's); reads `devices`. */
  intervalOf: (dev: PolledDevice) => number;
}

export interface BusSet {
  readonly transports: Map<string, BusTransport>;
  readonly pollers: Map<string, BusPoller>;
  readonly devices: Map<string, ConfiguredDevice>;
  /** Brings buses and devices to `config` (validated); `running`: new pollers start at once. Returns what changed. */
  apply(config: EdgeConfig, running: boolean): Promise<{ added: string[]; removed: string[]; changed: string[] }>;
}

export function createBusSet(deps: BusSetDeps): BusSet {
  const transports = new Map<string, BusTransport>();
  const pollers = new Map<string, BusPoller>();
  const devices = new Map<string, ConfiguredDevice>();
  const busCfg = new Map<string, string>();

  async function apply(config: EdgeConfig, running: boolean) {
    const wanted = new Map(config.buses.map((b) => [b.id, JSON.stringify(b)]));
    for (const [id, poller] of [...pollers]) {
      if (wanted.get(id) === busCfg.get(id)) continue;
      await poller.stop();
      pollers.delete(id);
      await transports.get(id)?.close();
      transports.delete(id);
      busCfg.delete(id);
      deps.logger.info({ bus: id }, wanted.has(id) ? 'bus settings changed: reopening it' : 'bus removed');
    }
    const before = new Map([...devices].map(([id, d]) => [id, JSON.stringify(d.cfg)]));
    devices.clear();
    for (const d of config.devices) {
      const profile = deps.profiles.get(d.profile)!;
      devices.set(d.id, { id: d.id, profile, unitId: d.unitId, pollMs: d.pollMs ?? config.pollMs, blocks: planReads(profile, { maxGap: d.maxGap ?? config.maxGap }), cfg: d });
    }
    for (const bus of config.buses) {
      const polled = config.devices.filter((d) => d.bus === bus.id).map((d) => {
        const dev = devices.get(d.id)!;
        return { ...dev, pollMs: deps.intervalOf(dev) };
      });
      const existing = pollers.get(bus.id);
      if (existing) {
        existing.setDevices(polled);
        continue;
      }
      const busLog = deps.logger.child({ bus: bus.id });
      const transport = createBusTransport({ bus, logger: busLog });
      transports.set(bus.id, transport);
      busCfg.set(bus.id, JSON.stringify(bus));
      const poller = createBusPoller({
        busId: bus.id, transport, devices: polled, logger: busLog, onReading: deps.onReading, breaker: config.breaker, now: deps.now,
        onPolled: (_device, ms) => deps.metrics.observePoll(bus.id, ms),
        onPass: (ms) => deps.metrics.observePass(bus.id, ms),
      });
      pollers.set(bus.id, poller);
      if (running) poller.start();
    }
    const added = [...devices.keys()].filter((id) => !before.has(id));
    const removed = [...before.keys()].filter((id) => !devices.has(id));
    const changed = [...devices.keys()].filter((id) => before.has(id) && before.get(id) !== JSON.stringify(devices.get(id)!.cfg));
    return { added, removed, changed };
  }

  return { transports, pollers, devices, apply };
}
