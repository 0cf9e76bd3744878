import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/config.ts';
import { loadDistrict } from '../../devices/district.ts';
import { getPoint, loadProfile, loadProfiles, protocolAddress, registerCount } from '../../devices/profile.ts';

const DISTRICT = join(dirname(fileURLToPath(import.meta.url)), '../../devices/district/xiangzhou.yaml');

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'cs-profile-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError a load throws, or fails the test. */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const GOOD_PROFILE = `
id: test-gauge
kind: water-level
name: Test gauge
addressBase: 0
points:
  - { key: level_m, name: Level, address: 0, type: int32, scale: 0.001 }
  - { key: battery_pct, name: Battery, address: 2, type: uint16 }
thresholds:
  - { id: level-high, point: level_m, op: ">", value: 0.9, hazard: waterlogging, severity: major, class: urgent }
`;

describe('built-in profiles', () => {
  it('loads the manhole cover, pipeline and water level profiles', () => {
    const profiles = loadProfiles();
    expect([...profiles.keys()].sort()).toEqual(['manhole-cover', 'pipeline', 'water-level']);
  });

  it('applies schema defaults and keeps the vendor address base', () => {
    const mh = loadProfiles().get('manhole-cover')!;
    const tilt = getPoint(mh, 'tilt_deg');
    expect(tilt.table).toBe('holding');
    expect(tilt.scale).toBe(1);
    expect(mh.addressBase).toBe(1);
    expect(protocolAddress(mh, tilt)).toBe(0);
    expect(registerCount(tilt)).toBe(2);
  });

  it('names the known points when a point is unknown', () => {
    const wl = loadProfiles().get('water-level')!;
    expect(() => getPoint(wl, 'depth')).toThrow(/no point "depth".*level_m, battery_pct/);
  });
});

describe('a bad profile', () => {
  it('loads when it is good (the baseline the bad ones change)', () => {
    expect(loadProfile(write('good.yaml', GOOD_PROFILE)).points).toHaveLength(2);
  });

  it('is refused naming the key of an unknown data type', () => {
    const file = write('p.yaml', GOOD_PROFILE.replace('type: uint16', 'type: uint24'));
    const err = configErrorOf(() => loadProfile(file));
    expect(err.file).toBe(file);
    expect(err.problems.map((p) => p.key)).toContain('points[1].type');
    expect(err.message).toContain('points[1].type');
  });

  it('is refused naming the key of a duplicate point', () => {
    const err = configErrorOf(() => loadProfile(write('p.yaml', GOOD_PROFILE.replace('key: battery_pct', 'key: level_m'))));
    expect(err.code).toBe('CS_DEV_PROFILE_INVALID');
    expect(err.problems).toContainEqual({ key: 'points[1].key', message: 'duplicate point key "level_m"' });
  });

  it('is refused naming the key of a point overlapping another one', () => {
    // level_m is an int32 at 0 and 1; a point at 1 overlaps its low word.
    const err = configErrorOf(() => loadProfile(write('p.yaml', GOOD_PROFILE.replace('address: 2', 'address: 1'))));
    expect(err.problems).toContainEqual({ key: 'points[1].address', message: 'overlaps point "level_m"' });
  });

  it('is refused naming the key of a threshold on an unknown point', () => {
    const err = configErrorOf(() => loadProfile(write('p.yaml', GOOD_PROFILE.replace('point: level_m', 'point: level_cm'))));
    expect(err.problems.map((p) => p.key)).toEqual(['thresholds[0].point']);
    expect(err.message).toMatch(/thresholds\[0\]\.point: names no point of this profile \("level_cm"\)/);
  });

  it('is refused naming the key of a bits point without its bit', () => {
    const err = configErrorOf(() => loadProfile(write('p.yaml', GOOD_PROFILE.replace('type: uint16', 'type: bits'))));
    expect(err.problems.map((p) => p.key)).toContain('points[1].bit');
  });

  it('is refused naming the file when the YAML does not parse', () => {
    const file = write('p.yaml', 'id: [unclosed');
    const err = configErrorOf(() => loadProfile(file));
    expect(err.file).toBe(file);
    expect(err.code).toBe('CS_CONFIG_YAML');
  });
});

describe('the district', () => {
  it('loads the Xiangzhou demo: 30 devices on 4 buses', () => {
    const d = loadDistrict(DISTRICT, loadProfiles());
    expect(d.devices).toHaveLength(30);
    expect(d.buses).toHaveLength(4);
    expect(d.county).toBe('440402');
  });

  const MINI = `
name: Mini
county: '440402'
units: [{ id: u-one, name: One }]
gateways: [{ id: gw-one, name: Gateway }]
buses: [{ id: bus-a, gateway: gw-one, port: 0 }]
devices:
  - { id: D-1, profile: water-level, name: Gauge, componentCode: '4404020520000001', lat: 22.27, lon: 113.54,
      ownerUnit: u-one, maintainerUnit: u-one, bus: bus-a, unitId: 1 }
`;

  it('loads a minimal district (the baseline the bad ones change)', () => {
    expect(loadDistrict(write('d.yaml', MINI), loadProfiles()).devices[0].id).toBe('D-1');
  });

  it('is refused naming the key of an unknown owner unit', () => {
    const err = configErrorOf(() => loadDistrict(write('d.yaml', MINI.replace('ownerUnit: u-one', 'ownerUnit: u-two')), loadProfiles()));
    expect(err.code).toBe('CS_DEV_DISTRICT_INVALID');
    expect(err.problems).toContainEqual({ key: 'devices[0].ownerUnit', message: 'unknown unit "u-two"' });
  });

  it('is refused naming the key of an unknown bus', () => {
    const err = configErrorOf(() => loadDistrict(write('d.yaml', MINI.replace('bus: bus-a, unitId', 'bus: bus-z, unitId')), loadProfiles()));
    expect(err.problems).toContainEqual({ key: 'devices[0].bus', message: 'unknown bus "bus-z"' });
  });

  it('is refused naming the key of an unknown profile', () => {
    const err = configErrorOf(() => loadDistrict(write('d.yaml', MINI.replace('profile: water-level', 'profile: rain-gauge')), loadProfiles()));
    expect(err.problems.map((p) => p.key)).toEqual(['devices[0].profile']);
  });

  it('is refused naming the key of a unit id out of the Modbus range', () => {
    const err = configErrorOf(() => loadDistrict(write('d.yaml', MINI.replace('unitId: 1', 'unitId: 300')), loadProfiles()));
    expect(err.problems.map((p) => p.key)).toContain('devices[0].unitId');
  });
});
