import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config.ts';
import { CloudServiceConfig, photosOf } from '../../cli/config.ts';

/** The cloud's `photos` config key: relative to the data directory, and required with PostgreSQL. */
describe('photos config', () => {
  const base = { district: 'd.yaml', mqtt: { url: 'mqtt://x:1883', username: 'cloud', password: 'p' } };

  it('resolves photos.dir against the data directory and leaves the SQLite default to the cloud', () => {
    const cfg = parseConfig(JSON.stringify({ ...base, photos: { dir: 'pics', maxDistanceM: 150 } }), CloudServiceConfig, 'cloud.yaml');
    expect(photosOf(cfg, 'sqlite', 'cloud.yaml', '/data')).toEqual({ dir: '/data/pics', maxDistanceM: 150 });
    const none = parseConfig(JSON.stringify(base), CloudServiceConfig, 'cloud.yaml');
    expect(photosOf(none, 'sqlite', 'cloud.yaml', '/data')).toEqual({ dir: undefined, maxDistanceM: undefined });
  });

  it('refuses PostgreSQL without photos.dir, naming the key', () => {
    const cfg = parseConfig(JSON.stringify({ ...base, database: { kind: 'postgres', url: 'postgres://x/y' } }), CloudServiceConfig, 'cloud.yaml');
    expect(() => photosOf(cfg, 'postgres', 'cloud.yaml', '/data')).toThrow(/photos\.dir.*required/);
  });
});
