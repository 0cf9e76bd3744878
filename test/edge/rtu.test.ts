import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { buildRtuSim, type RtuFault, type RtuSim } from '../../devices/rtu-sim.ts';
import { silentLogger } from '../../lib/log.ts';
import { planReads } from '../../edge/plan.ts';
import { createBusPoller, type BusPoller, type DeviceReading, type SlaveHealth } from '../../edge/poller.ts';
import { createBusTransport, type BusTransport } from '../../edge/transport.ts';
import type { EdgeBus } from '../../edge/config.ts';

/**
 * Modbus RTU through the real serial stack: serialport on one end of a socat pseudo-terminal pair,
 * the fault-injecting RTU line simulator (devices/rtu-sim.ts) on the other.
 */

const profiles = loadProfiles();
const socatPresent = spawnSync('socat', ['-V']).status === 0;
if (!socatPresent) console.warn('test/edge/rtu.test.ts: socat is not installed (Debian package socat; .ci/run installs it): RTU pty tests skipped');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-rtu-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

/** A socat pty pair with stable link names; stop() removes both ends (the links vanish with it). */
async function ptyPair(dir: string) {
  const a = join(dir, 'edge-end');
  const b = join(dir, 'slave-end');
  let child: ChildProcess | undefined;
  const pair = {
    a, b,
    async start() {
      child = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
      await until(() => existsSync(a) && existsSync(b));
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
      await until(() => !existsSync(a) && !existsSync(b));
    },
  };
  await pair.start();
  cleanups.push(() => pair.stop());
  return pair;
}

async function rtuSim(path: string, slaves: { unitId: number; profile: string; fault?: RtuFault }[], extra: { slowDelayMs?: number } = {}): Promise<RtuSim> {
  const sim = buildRtuSim({ path, slaves: slaves.map((s) => ({ ...s, profile: profiles.get(s.profile)! })), ...extra });
  await sim.start();
  cleanups.push(() => sim.stop());
  return sim;
}

function rtuBus(path: string, extra: Partial<EdgeBus> = {}): EdgeBus {
  return { id: 'bus-rtu', type: 'rtu', host: '127.0.0.1', path, baudRate: 115200, parity: 'none', stopBits: 1, timeoutMs: 500, reopenMs: 50, ...extra };
}

function transportFor(bus: EdgeBus): BusTransport {
  const t = createBusTransport({ bus, logger: silentLogger() });
  cleanups.push(() => t.close());
  return t;
}

/** A poller over one bus, polled only by the test, whose breaker runs on the test's clock; readings collected per device. */
function pollerFor(transport: BusTransport, devices: { id: string; profile: string; unitId: number }[], clock: { t: number }) {
  const got = new Map<string, DeviceReading[]>();
  const poller: BusPoller = createBusPoller({
    busId: transport.busId,
    transport,
    devices: devices.map((d) => {
      const profile = profiles.get(d.profile)!;
      return { id: d.id, profile, unitId: d.unitId, pollMs: Infinity, blocks: planReads(profile) };
    }),
    logger: silentLogger(),
    onReading: async (r) => { got.set(r.device, [...(got.get(r.device) ?? []), r]); },
    breaker: { failures: 2, backoffMs: 1000, maxBackoffMs: 4000 },
    now: () => clock.t,
  });
  poller.start();
  cleanups.push(() => poller.stop());
  return { poller, got, count: (id: string) => got.get(id)?.length ?? 0 };
}

describe.skipIf(!socatPresent)('Modbus RTU over a pseudo-terminal', () => {
  it('reads and writes simulated RTU slaves through serialport, decoding and encoding with the profile codec', async () => {
    const dir = tempDir();
    const pty = await ptyPair(dir);
    const sim = await rtuSim(pty.b, [{ unitId: 1, profile: 'water-level' }, { unitId: 2, profile: 'manhole-cover' }, { unitId: 3, profile: 'pipeline' }]);
    sim.set(1, 'level_m', 0.873);
    sim.set(2, 'tilt_deg', 12.5);
    sim.set(2, 'cover_open', true);
    sim.set(3, 'flow_m3h', -12.34);
    sim.set(3, 'tag', 'ZH01');
    const clock = { t: 0 };
    const transport = transportFor(rtuBus(pty.a));
    const { poller, got } = pollerFor(transport, [
      { id: 'WL-1', profile: 'water-level', unitId: 1 },
      { id: 'MH-1', profile: 'manhole-cover', unitId: 2 },
      { id: 'PL-1', profile: 'pipeline', unitId: 3 },
    ], clock);

    await poller.pollAll();
    expect(got.get('WL-1')![0].values).toMatchObject({ level_m: 0.873, battery_pct: 92 });
    expect(got.get('MH-1')![0].values).toMatchObject({ tilt_deg: 12.5, cover_open: true });
    expect(got.get('PL-1')![0].values).toMatchObject({ flow_m3h: -12.34, tag: 'ZH01' });

    // Writes go through the same codec: an int32 CDAB (FC16), a bit inside a register (read, then FC6).
    await poller.write('WL-1', 'level_m', 1.234);
    await poller.write('MH-1', 'cover_open', false);
    expect(sim.value(1, 'level_m')).toBe(1.234);
    expect(sim.value(2, 'cover_open')).toBe(false);
    await poller.pollAll();
    expect(got.get('WL-1')![1].values.level_m).toBe(1.234);
    expect(got.get('MH-1')![1].values.cover_open).toBe(false);
    // A read-only point is refused before anything goes on the line.
    await expect(poller.write('MH-1', 'gas_ch4_ppm', 5)).rejects.toThrow(/not writable/);
    expect(transport.stats()).toMatchObject({ opens: 1, drops: 0, open: true });
  });

  it('reads the healthy slaves of a bus in every cycle while each misbehaving one is counted under its fault and tried only on its backoff, and reads a recovered slave again', async () => {
    const dir = tempDir();
    const pty = await ptyPair(dir);
    // The slow slave answers 800 ms after its request, 300 ms after its timeout: while the dead one
    // after it is being waited for. The edge must recognise that late frame and not blame the dead one.
    const faults: [number, RtuFault, keyof SlaveHealth][] = [
      [4, 'slow', 'timeout'], [3, 'dead', 'timeout'], [5, 'crc', 'crc'], [6, 'wrong-unit', 'wrongUnit'],
      [7, 'exception', 'exception'], [8, 'truncated', 'truncated'],
    ];
    const sim = await rtuSim(pty.b, [
      { unitId: 1, profile: 'water-level' }, { unitId: 2, profile: 'manhole-cover' },
      ...faults.map(([unitId, fault]) => ({ unitId, profile: 'water-level', fault })),
    ], { slowDelayMs: 800 });
    const clock = { t: 1_000_000 };
    // A generous timeout: the simulator shares this process's event loop and the machine its cores.
    const transport = transportFor(rtuBus(pty.a));
    const healthy = ['OK-1', 'OK-2'];
    // Healthy slaves first, last and in between: a failing neighbour on either side costs them nothing.
    const devices = [
      { id: 'OK-1', profile: 'water-level', unitId: 1 },
      ...faults.slice(0, 3).map(([unitId]) => ({ id: `F-${unitId}`, profile: 'water-level', unitId })),
      { id: 'OK-2', profile: 'manhole-cover', unitId: 2 },
      ...faults.slice(3).map(([unitId]) => ({ id: `F-${unitId}`, profile: 'water-level', unitId })),
    ];
    const { poller, count } = pollerFor(transport, devices, clock);
    const health = (id: string) => poller.health().find((h) => h.device === id)!;
    let cycles = 0;
    const cycle = async () => { await poller.pollAll(); cycles += 1; for (const id of healthy) expect(count(id), JSON.stringify(health(id))).toBe(cycles); };

    // Two faults in a row open each failing slave's breaker.
    await cycle();
    await cycle();
    for (const [unitId, , kind] of faults) {
      const h = health(`F-${unitId}`);
      expect(h.breaker, `F-${unitId}`).toBe('open');
      expect(h[kind], `F-${unitId} ${kind}`).toBe(2);
      // Each fault under its own name only.
      for (const other of ['timeout', 'crc', 'exception', 'wrongUnit', 'truncated', 'badFrame'] as const) {
        if (other !== kind) expect(h[other], `F-${unitId} ${other}`).toBe(0);
      }
      expect(sim.requests(unitId)).toBe(2);
    }
    // While open, the failing slaves are not asked at all: the bus serves only the healthy ones.
    for (let i = 0; i < 3; i++) await cycle();
    for (const [unitId] of faults) {
      expect(sim.requests(unitId)).toBe(2);
      expect(health(`F-${unitId}`).skipped).toBe(3);
    }
    // After the backoff one probe each; it fails and the backoff doubles (1 s, then 2 s).
    clock.t += 1000;
    await cycle();
    for (const [unitId] of faults) {
      expect(sim.requests(unitId)).toBe(3);
      expect(health(`F-${unitId}`)).toMatchObject({ breaker: 'open', probes: 1, backoffMs: 2000 });
    }
    clock.t += 1000;
    await cycle();
    for (const [unitId] of faults) expect(sim.requests(unitId)).toBe(3);
    // The slaves recover; the next probe reads them and they are polled every cycle again, no restart.
    for (const [unitId] of faults) sim.setFault(unitId, 'none');
    clock.t += 1000;
    await cycle();
    await cycle();
    for (const [unitId] of faults) {
      expect(count(`F-${unitId}`), `F-${unitId} ${JSON.stringify(health(`F-${unitId}`))} requests ${sim.requests(unitId)} link ${JSON.stringify(transport.stats())}`).toBe(2);
      expect(health(`F-${unitId}`)).toMatchObject({ breaker: 'closed', consecutiveFaults: 0 });
    }
    for (const id of healthy) expect(health(id)).toMatchObject({ ok: cycles, timeout: 0, crc: 0, wrongUnit: 0, truncated: 0, exception: 0, breaker: 'closed' });
  });

  it('reopens the serial port when the pseudo-terminal is removed and created again, without a restart', async () => {
    const dir = tempDir();
    const pty = await ptyPair(dir);
    let sim = await rtuSim(pty.b, [{ unitId: 1, profile: 'water-level' }]);
    const clock = { t: 0 };
    const transport = transportFor(rtuBus(pty.a));
    const { poller, count } = pollerFor(transport, [{ id: 'WL-1', profile: 'water-level', unitId: 1 }], clock);
    await poller.pollAll();
    expect(count('WL-1'), JSON.stringify(poller.health())).toBe(1);

    // The port goes away (a USB adapter pulled, the pty removed).
    await sim.stop();
    await pty.stop();
    await poller.pollAll();
    await poller.pollAll();
    expect(count('WL-1')).toBe(1);
    const h = poller.health()[0];
    // Link faults are the bus's, not the slave's: its breaker stays closed.
    expect(h.busDown).toBeGreaterThanOrEqual(1);
    expect(h.breaker).toBe('closed');

    await pty.start();
    sim = await rtuSim(pty.b, [{ unitId: 1, profile: 'water-level' }]);
    while (count('WL-1') < 2) {
      await poller.pollAll();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(transport.stats().opens).toBe(2);
    expect(transport.stats().drops + transport.stats().openFailures).toBeGreaterThanOrEqual(1);
  });
});

describe('Modbus RTU over TCP', () => {
  it('reads slaves behind a serial server and reconnects when the server is stopped and started again', async () => {
    const sim = buildRtuSim({ tcpPort: 0, slaves: [{ unitId: 1, profile: profiles.get('water-level')! }, { unitId: 2, profile: profiles.get('water-level')!, fault: 'exception' }] });
    await sim.start();
    cleanups.push(() => sim.stop());
    sim.set(1, 'level_m', 0.5);
    const clock = { t: 0 };
    const transport = transportFor({ id: 'bus-rot', type: 'rtu-over-tcp', host: '127.0.0.1', port: sim.port, timeoutMs: 200, reopenMs: 50 });
    const { poller, count } = pollerFor(transport, [{ id: 'WL-1', profile: 'water-level', unitId: 1 }, { id: 'WL-2', profile: 'water-level', unitId: 2 }], clock);
    await poller.pollAll();
    expect(count('WL-1')).toBe(1);
    expect(poller.health().find((h) => h.device === 'WL-2')).toMatchObject({ exception: 1, ok: 0 });

    await sim.stop();
    await poller.pollAll();
    expect(count('WL-1')).toBe(1);
    await sim.start();
    while (count('WL-1') < 2) {
      await poller.pollAll();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(transport.stats().opens).toBe(2);
  });
});
