import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../lib/config.ts';
import { pointerToKey } from '../../lib/schema.ts';

const Schema = Type.Object({
  name: Type.String(),
  mqtt: Type.Object({ port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }) }, { default: {} }),
  devices: Type.Array(Type.Object({ id: Type.String(), kind: Type.Union([Type.Literal('a'), Type.Literal('b')]) })),
}, { additionalProperties: false });

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config files', () => {
  it('fill in defaults for keys left out', () => {
    expect(parseConfig('name: x\ndevices: []\n', Schema)).toEqual({ name: 'x', mqtt: { port: 1883 }, devices: [] });
  });

  it('a wrong type is reported with the key path, the problem and the file', () => {
    const e = errorOf(() => parseConfig('name: x\ndevices:\n  - { id: d1, kind: a }\n  - { id: d2, kind: c }\n', Schema, '/etc/cs.yaml'));
    expect(e.code).toBe('CS_CONFIG_INVALID');
    expect(e.message).toContain('/etc/cs.yaml');
    expect(e.problems[0].key).toBe('devices[1].kind');
    expect(e.problems[0].message).toContain('"c"');
  });

  it('a missing required key is named', () => {
    const e = errorOf(() => parseConfig('devices: []\n', Schema));
    expect(e.problems.map((p) => p.key)).toContain('name');
    expect(e.problems.find((p) => p.key === 'name')!.message).toBe('is required');
  });

  it('an unknown key is refused rather than silently ignored', () => {
    const e = errorOf(() => parseConfig('name: x\ndevices: []\nmqqt: {}\n', Schema));
    expect(e.message).toMatch(/mqqt|additional/i);
  });

  it('broken YAML names the line', () => {
    const e = errorOf(() => parseConfig('name: [x\n', Schema, 'f.yaml'));
    expect(e.code).toBe('CS_CONFIG_YAML');
    expect(e.problems[0].key).toMatch(/^line \d+/);
  });

  it('a missing file is a config error naming the file', () => {
    const e = errorOf(() => loadConfig('/nonexistent/cs.yaml', Schema));
    expect(e.code).toBe('CS_CONFIG_READ');
    expect(e.message).toContain('/nonexistent/cs.yaml');
  });

  it('reads a file from disk', () => {
    const d = mkdtempSync(join(tmpdir(), 'cs-cfg-'));
    dirs.push(d);
    writeFileSync(join(d, 'c.yaml'), 'name: y\nmqtt: { port: 0 }\ndevices: [{ id: a, kind: b }]\n');
    expect(loadConfig(join(d, 'c.yaml'), Schema).mqtt.port).toBe(0);
  });

  it('json pointers become readable key paths', () => {
    expect(pointerToKey('/devices/3/transport/port')).toBe('devices[3].transport.port');
    expect(pointerToKey('')).toBe('(root)');
  });
});
