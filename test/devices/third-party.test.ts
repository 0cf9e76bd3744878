import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { parseRtuOptions } from '../../cli/run-sim.ts';
import { buildRtuSim } from '../../devices/rtu-sim.ts';
import { buildEdge } from '../../edge/edge.ts';
import type { EdgeConfigInput } from '../../edge/config.ts';
import { recordingBroker } from '../edge/helpers.ts';
import { eventually, runCli } from '../helpers/process.ts';

/**
 * Issue 9, done when: a third-party transmitter described by a profile in a USER directory (an open
 * `kind`, a float32 CDAB point, bits, a 0.1 % scaled uint16, a uint32) is polled by the real edge over
 * Modbus TCP and over RTU on a socat pseudo-terminal, both served by `citysteward sim` run as the CLI.
 */

const USER_PROFILES = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/profiles');
const socatPresent = spawnSync('socat', ['-V']).status === 0;
if (!socatPresent) console.warn('test/devices/third-party.test.ts: socat is not installed (Debian package socat): skipped');

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const DISTRICT = `
name: Outfalls
county: '440402'
units: [{ id: u-water, name: Water office }]
gateways: [{ id: gw-wq, name: Water-quality gateway }]
buses:
  - { id: bus-tcp, gateway: gw-wq, host: 127.0.0.1, port: 0 }
  - { id: bus-rtu, gateway: gw-wq, host: 127.0.0.1, port: 0 }
devices:
  - { id: WQ-1, profile: wq-multiparam, name: Outfall 1, componentCode: '4404020520000001', lat: 22.27, lon: 113.54,
      ownerUnit: u-water, maintainerUnit: u-water, bus: bus-tcp, unitId: 3 }
  - { id: WQ-2, profile: wq-multiparam, name: Outfall 2, componentCode: '4404020520000002', lat: 22.28, lon: 113.55,
      ownerUnit: u-water, maintainerUnit: u-water, bus: bus-rtu, unitId: 9 }
`;

/** What the transmitter's registers hold (its profile's sim bases): decoded by the edge, these come back. */
const EXPECTED = { ph: 7.25, turbidity_ntu: 12.5, do_sat_pct: 87.3, runtime_s: 123456789, probe_fouled: false, low_flow: true };

async function ptyPair(dir: string): Promise<{ sim: string; edge: string }> {
  const sim = join(dir, 'tty-sim');
  const edge = join(dir, 'tty-edge');
  const child: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${sim}`, `pty,raw,echo=0,link=${edge}`], { stdio: 'ignore' });
  cleanups.push(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
  await eventually(() => existsSync(sim) && existsSync(edge), 5000, 10);
  return { sim, edge };
}

describe.skipIf(!socatPresent)('a third-party transmitter from a user profile directory', () => {
  it('is polled by the edge over Modbus TCP and over RTU on a pty, both served by `citysteward sim`, and decodes to its values (a broken profile no device uses is only a warning)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-third-party-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const district = join(dir, 'district.yaml');
    writeFileSync(district, DISTRICT);
    const tty = await ptyPair(dir);
    // The user's directory also holds a broken profile no device uses: a warning, not a stop.
    const userDir = join(dir, 'profiles');
    cpSync(USER_PROFILES, userDir, { recursive: true });
    writeFileSync(join(userDir, 'broken.yaml'), 'id: rain-gauge\nkind: rain-gauge\nname: Broken\npoints: []\n');

    const sim = runCli(['sim', '--config', district, '--profiles', userDir, '--data-dir', join(dir, 'sim'), '--rtu', `bus-rtu=${tty.sim}`, '--baud', '115200']);
    cleanups.push(() => sim.stop());
    const [, tcpPort] = await sim.waitFor(/sim: bus bus-tcp on 127\.0\.0\.1:(\d+) serving WQ-1@3/);
    await sim.waitFor(/sim: bus bus-rtu over RTU on .*tty-sim at 115200 baud serving WQ-2@9/);
    expect(sim.output()).toMatch(/profile not loaded: it is invalid/);

    const broker = await recordingBroker();
    cleanups.push(() => broker.stop());
    const config: EdgeConfigInput = {
      gateway: 'gw-wq',
      mqtt: { url: broker.url, username: 'gw-wq', password: 'x' },
      pollMs: 200,
      healthMs: 0,
      outbox: { kind: 'memory' },
      buses: [
        { id: 'bus-tcp', type: 'tcp', port: Number(tcpPort), timeoutMs: 1000 },
        { id: 'bus-rtu', type: 'rtu', path: tty.edge, baudRate: 115200, parity: 'none', stopBits: 1, timeoutMs: 500 },
      ],
      devices: [
        { id: 'WQ-1', profile: 'wq-multiparam', bus: 'bus-tcp', unitId: 3 },
        { id: 'WQ-2', profile: 'wq-multiparam', bus: 'bus-rtu', unitId: 9 },
      ],
    };
    const profiles = loadProfiles({ userDir });
    expect(profiles.get('wq-multiparam')!.kind).toBe('water-quality');
    const edge = buildEdge({ config, profiles, dataDir: join(dir, 'edge') });
    await edge.start();
    cleanups.push(() => edge.stop());

    const good = (device: string) => [...broker.store.values()].find((r) => r.device === device && Object.keys(r.values).length === 6);
    const tcp = await eventually(() => good('WQ-1'), 20_000);
    const rtu = await eventually(() => good('WQ-2'), 20_000);
    expect(tcp.values).toEqual(EXPECTED);
    expect(rtu.values).toEqual(EXPECTED);
    expect(tcp.quality).toBe('good');
    expect(rtu.quality).toBe('good');
  }, 60_000);
});

describe('sim --rtu', () => {
  it('maps BUS=PATH, or PATH alone when one bus is served', () => {
    expect([...parseRtuOptions(['bus-a=/tmp/a', 'bus-b=/tmp/b'], ['bus-a', 'bus-b'])]).toEqual([['bus-a', '/tmp/a'], ['bus-b', '/tmp/b']]);
    expect([...parseRtuOptions(['/tmp/a'], ['bus-a'])]).toEqual([['bus-a', '/tmp/a']]);
  });

  it('refuses a path without its bus when several are served, an unknown bus, and one path for two buses', () => {
    expect(() => parseRtuOptions(['/tmp/a'], ['bus-a', 'bus-b'])).toThrow(/give BUS=PATH/);
    expect(() => parseRtuOptions(['bus-z=/tmp/a'], ['bus-a'])).toThrow(/bus "bus-z" is not served/);
    expect(() => parseRtuOptions(['bus-a=/tmp/a', 'bus-b=/tmp/a'], ['bus-a', 'bus-b'])).toThrow(/given to two buses/);
  });
});

describe('the RTU line simulator', () => {
  it("an RTU slave plays its district scenario and its profile's behaviour, as a TCP simulator device does", () => {
    let t = 1_000_000;
    const wl = loadProfiles().get('water-level')!;
    const sim = buildRtuSim({ tcpPort: 0, now: () => t, slaves: [{ unitId: 1, profile: wl, scenario: { kind: 'sudden-breach', point: 'level_m', afterS: 5, to: 0.9 } }] });
    expect(sim.value(1, 'level_m')).toBeLessThan(0.1);
    t += 6000;
    expect(sim.value(1, 'level_m')).toBeGreaterThan(0.85);
    sim.set(1, 'level_m', 0.3);
    t += 6000;
    expect(sim.value(1, 'level_m')).toBe(0.3);
  });
});
