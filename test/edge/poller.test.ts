import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config.ts';
import { silentLogger } from '../../lib/log.ts';
import { Profile } from '../../devices/profile.ts';
import { buildSimulator } from '../../devices/simulator.ts';
import { createBusPoller } from '../../edge/poller.ts';
import { planReads } from '../../edge/plan.ts';
import { createBusTransport } from '../../edge/transport.ts';

// A relay module: two writable flags packed into one holding register.
const relay = parseConfig(`
id: relay
kind: pipeline
name: Two-channel relay
points:
  - { key: pump_a, name: Pump A, address: 0, type: bits, bit: 0, writable: true }
  - { key: pump_b, name: Pump B, address: 0, type: bits, bit: 1, writable: true }
`, Profile);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('bus poller writes', () => {
  it('keeps both of two concurrent writes to bits of one register (regression: interleaved read-modify-writes lost one)', async () => {
    const sim = buildSimulator({ port: 0, devices: [{ id: 'R-1', profile: relay, unitId: 1 }] });
    const { port } = await sim.start();
    cleanups.push(() => sim.stop());
    const transport = createBusTransport({ bus: { id: 'bus-r', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 1000 }, logger: silentLogger() });
    cleanups.push(() => transport.close());
    const poller = createBusPoller({
      busId: 'bus-r', transport, logger: silentLogger(), onReading: async () => {},
      devices: [{ id: 'R-1', profile: relay, unitId: 1, pollMs: Infinity, blocks: planReads(relay) }],
    });
    poller.start();
    cleanups.push(() => poller.stop());

    await Promise.all([poller.write('R-1', 'pump_a', true), poller.write('R-1', 'pump_b', true)]);
    expect(sim.registers('R-1').holding[0]).toBe(0b11);
    expect([sim.value('R-1', 'pump_a'), sim.value('R-1', 'pump_b')]).toEqual([true, true]);
  });
});
