import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config.ts';
import { CsError } from '../../lib/errors.ts';
import { loadDistrict } from '../../devices/district.ts';
import { loadProfile, loadProfiles } from '../../devices/profile.ts';
import { validateEdgeConfig } from '../../edge/config.ts';

/** Regression tests of issue 9, "a user cannot add a device type". */

let dir: string;
let userDir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cs-profiles-'));
  userDir = join(dir, 'profiles');
  mkdirSync(userDir);
});
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

function write(file: string, text: string): string {
  writeFileSync(file, text);
  return file;
}

function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

/** A pino logger writing its JSON lines into an array. */
function recordingLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(chunk.toString())); done(); } });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const RAIN_GAUGE = `
id: rain-gauge
kind: rain-gauge
name: Tipping-bucket rain gauge
points:
  - { key: rain_mm, name: Rain in the last hour, table: input, address: 0, type: uint16, scale: 0.1, unit: mm }
thresholds:
  - { id: rain-heavy, point: rain_mm, op: ">", value: 30, hazard: heavy-rain, severity: major, class: routine }
`;

const district = (profile: string, extra = '') => `
name: Mini
county: '440402'
units: [{ id: u-one, name: One }]
gateways: [{ id: gw-one, name: Gateway }]
buses: [{ id: bus-a, gateway: gw-one, port: 0 }]
devices:
  - { id: D-1, profile: ${profile}, name: Gauge, componentCode: '4404020520000001', lat: 22.27, lon: 113.54,
      ownerUnit: u-one, maintainerUnit: u-one, bus: bus-a, unitId: 1${extra} }
`;

const edgeConfig = (deadbands: Record<string, number>) => ({
  gateway: 'gw-one',
  mqtt: { url: 'mqtt://127.0.0.1:1883', username: 'gw-one', password: 'x' },
  buses: [{ id: 'bus-a', port: 502 }],
  devices: [{ id: 'D-1', profile: 'water-level', bus: 'bus-a', unitId: 1, deadbands }],
});

describe('profiles from a user directory', () => {
  it('a profile of a kind outside the built-in three (a rain gauge) loads', () => {
    const p = loadProfile(write(join(userDir, 'rain.yaml'), RAIN_GAUGE));
    expect(p.kind).toBe('rain-gauge');
  });

  it('a kind that is not lower-case words is refused naming the key', () => {
    const err = configErrorOf(() => loadProfile(write(join(userDir, 'rain.yaml'), RAIN_GAUGE.replace('kind: rain-gauge', 'kind: Rain Gauge'))));
    expect(err.problems.map((p) => p.key)).toContain('kind');
  });

  it('a profile in the user directory loads beside the built-ins, and a district can use it', () => {
    write(join(userDir, 'rain.yaml'), RAIN_GAUGE);
    const profiles = loadProfiles({ userDir });
    expect([...profiles.keys()].sort()).toEqual(['manhole-cover', 'pipeline', 'rain-gauge', 'water-level']);
    expect(loadDistrict(write(join(dir, 'd.yaml'), district('rain-gauge')), profiles).devices[0].profile).toBe('rain-gauge');
  });

  it('a user profile with the id of a built-in shadows it, with an info log', () => {
    write(join(userDir, 'wl.yaml'), RAIN_GAUGE.replace('id: rain-gauge', 'id: water-level'));
    const { logger, lines } = recordingLogger();
    const profiles = loadProfiles({ userDir, logger });
    expect(profiles.get('water-level')!.kind).toBe('rain-gauge');
    const line = lines.find((l) => l.msg === 'user profile shadows the built-in one');
    expect(line).toMatchObject({ level: 30, profile: 'water-level', file: join(userDir, 'wl.yaml') });
  });

  it('a profile directory that does not exist is refused clearly', () => {
    expect(() => loadProfiles({ userDir: join(dir, 'nope') })).toThrow(CsError);
    expect(() => loadProfiles({ userDir: join(dir, 'nope') })).toThrow(/profile directory .*nope does not exist/);
  });
});

describe('a bad profile', () => {
  const BAD = RAIN_GAUGE.replace('type: uint16', 'type: uint24');

  it('a bad profile that no device uses is a warning: the others load and the district starts', () => {
    write(join(userDir, 'broken.yaml'), BAD);
    write(join(userDir, 'good.yaml'), RAIN_GAUGE.replace(/rain-gauge/g, 'rain-gauge-2'));
    const { logger, lines } = recordingLogger();
    const profiles = loadProfiles({ userDir, logger });
    expect(profiles.has('rain-gauge-2')).toBe(true);
    expect(profiles.has('rain-gauge')).toBe(false);
    expect(lines.find((l) => l.level === 40 && l.profile === 'rain-gauge')).toMatchObject({ file: join(userDir, 'broken.yaml') });
    expect(loadDistrict(write(join(dir, 'd.yaml'), district('water-level')), profiles).devices).toHaveLength(1);
  });

  it('a bad profile that a device uses stops the district load naming the profile file, key and problem', () => {
    const file = write(join(userDir, 'broken.yaml'), BAD);
    const profiles = loadProfiles({ userDir });
    const err = configErrorOf(() => loadDistrict(write(join(dir, 'd.yaml'), district('rain-gauge')), profiles));
    expect(err.problems[0].key).toBe('devices[0].profile');
    expect(err.problems[0].message).toContain(`profile "rain-gauge" is invalid (${file}: points[0].type:`);
  });

  it('a bad profile that an edge device uses stops the edge config naming the profile file, key and problem', () => {
    const file = write(join(userDir, 'broken.yaml'), BAD.replace(/rain-gauge/g, 'water-level'));
    const profiles = loadProfiles({ userDir });
    const err = configErrorOf(() => validateEdgeConfig(edgeConfig({}), profiles));
    expect(err.problems[0]).toMatchObject({ key: 'devices[0].profile' });
    expect(err.problems[0].message).toContain(`(${file}: points[0].type:`);
  });
});

describe('every name of a point is checked', () => {
  it('a misspelt point name in deadbands is refused naming the key', () => {
    const profiles = loadProfiles();
    expect(validateEdgeConfig(edgeConfig({ level_m: 0.01 }), profiles).devices[0].deadbands).toEqual({ level_m: 0.01 });
    const err = configErrorOf(() => validateEdgeConfig(edgeConfig({ levl_m: 0.01 }), profiles));
    expect(err.problems).toEqual([{ key: 'devices[0].deadbands.levl_m', message: expect.stringContaining('profile water-level has no point "levl_m"') }]);
  });

  it('a district scenario naming no point of its profile is refused at load, not when the simulator starts', () => {
    const file = write(join(dir, 'd.yaml'), district('water-level', ', scenario: { kind: sudden-breach, point: levl_m, to: 1 }'));
    const err = configErrorOf(() => loadDistrict(file, loadProfiles()));
    expect(err.problems).toEqual([{ key: 'devices[0].scenario.point', message: expect.stringContaining('no point "levl_m"') }]);
  });

  it('a district scenario that does not fit its point is refused at load naming the key', () => {
    const file = write(join(dir, 'd.yaml'), district('water-level', ', scenario: { kind: sudden-breach, point: level_m, to: true }'));
    const err = configErrorOf(() => loadDistrict(file, loadProfiles()));
    expect(err.problems[0].key).toBe('devices[0].scenario.to');
  });
});

describe('the 16-bit address space', () => {
  const at = (address: number, type: string, base = 0) => `
id: edge-of-map
kind: test-gauge
name: Edge of the map
addressBase: ${base}
points:
  - { key: v, name: V, address: ${address}, type: ${type} }
`;

  it('a float32 at register 65535 is refused at load (its second register would be 65536)', () => {
    const err = configErrorOf(() => loadProfile(write(join(dir, 'p.yaml'), at(65535, 'float32'))));
    expect(err.problems).toEqual([{ key: 'points[0].address', message: expect.stringContaining('end at protocol address 65536') }]);
  });

  it('a uint16 at 65535 loads, and so does a float32 at 65534', () => {
    expect(loadProfile(write(join(dir, 'p.yaml'), at(65535, 'uint16'))).points[0].address).toBe(65535);
    expect(loadProfile(write(join(dir, 'p.yaml'), at(65534, 'float32'))).points[0].address).toBe(65534);
  });

  it('with addressBase 1, address 65536 is the last register and a float64 at 65534 is refused', () => {
    expect(loadProfile(write(join(dir, 'p.yaml'), at(65536, 'uint16', 1))).points[0].address).toBe(65536);
    const err = configErrorOf(() => loadProfile(write(join(dir, 'p.yaml'), at(65534, 'float64', 1))));
    expect(err.problems[0].key).toBe('points[0].address');
  });

  it('a string point whose length runs past 65535 is refused', () => {
    const err = configErrorOf(() => loadProfile(write(join(dir, 'p.yaml'), at(65530, 'string').replace('type: string', 'type: string, length: 8'))));
    expect(err.problems[0].message).toContain('its 8 registers end at protocol address 65537');
  });
});

describe('the command line', () => {
  it("`citysteward edge` takes the profile directory from its config's `profiles` key and refuses a device on a bad profile naming file, key and problem", async () => {
    const { runCliOnce } = await import('../helpers/process.ts');
    const file = write(join(userDir, 'rain.yaml'), RAIN_GAUGE.replace('type: uint16', 'type: uint24'));
    const cfg = write(join(dir, 'edge.yaml'), `
gateway: gw-one
profiles: ./profiles
mqtt: { url: "mqtt://127.0.0.1:1", username: gw-one, password: x }
buses: [{ id: bus-a, port: 502 }]
devices: [{ id: D-1, profile: rain-gauge, bus: bus-a, unitId: 1 }]
`);
    const r = await runCliOnce(['edge', '--config', cfg, '--data-dir', join(dir, 'data')]);
    expect(r.code).toBe(2);
    expect(r.output).toContain('devices[0].profile');
    expect(r.output).toContain(`profile "rain-gauge" is invalid (${file}: points[0].type:`);
  }, 30_000);
});
