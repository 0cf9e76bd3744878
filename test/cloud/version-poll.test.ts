import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.ts';
import { openDatabase, type Database } from '../../cloud/db/database.ts';
import { createVersionPoll, type Versions } from '../../cloud/version-poll.ts';
import { eventually } from '../helpers/process.ts';
import { BACKENDS, profiles, type Backend } from './fixtures.ts';
import { configApi, configDistrict, startCloud, T0, type StartedCloud } from './harness.ts';

/**
 * The cloud's one poll of the registry's and the configuration's versions (cloud/version-poll.ts), on a
 * database a cloud migrated and changes: one query a tick for both, each subscriber at its own interval.
 */

describe.each(BACKENDS)('the version poll on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let h: StartedCloud;
    let database: Database;
    let queries = 0;
    const { get, putOk } = configApi(() => h);

    beforeEach(async () => {
      h = await startCloud(backend, { district: configDistrict, profiles, now: () => T0, escalation: false, emergency: false, registry: { pollMs: 0 } });
      database = openDatabase(h.db, silentLogger(), () => { queries += 1; });
    });
    afterEach(async () => {
      await database?.close();
      await h?.stop();
    });

    it('reads both versions in one query and tells each subscriber at its own interval', async () => {
      let t = 0;
      const told: [string, Versions][] = [];
      const poll = createVersionPoll({ db: () => database.db, logger: silentLogger(), clock: () => t });
      poll.subscribe({ name: 'registry', everyMs: 100, onVersions: async (v) => void told.push(['registry', v]) });
      poll.subscribe({ name: 'config', everyMs: 300, onVersions: async (v) => void told.push(['config', v]) });
      poll.subscribe({ name: 'never', everyMs: 0, onVersions: async (v) => void told.push(['never', v]) });
      expect(poll.tickMs()).toBe(100);
      queries = 0;
      const at = async (ms: number) => { t = ms; await poll.tick(); return told.splice(0).map(([name]) => name); };
      expect(await at(40)).toEqual([]);
      expect(queries).toBe(0);
      expect(await at(100)).toEqual(['registry']);
      expect(await at(200)).toEqual(['registry']);
      const version = h.cloud.registry.version();
      const rules = await get('rules');
      // A change of each, then the tick that tells both: one query.
      const r = await h.cloud.app.inject({ method: 'POST', url: '/api/registry/gateways', headers: { authorization: `Bearer ${h.admin}` }, payload: { id: 'gw-poll', name: 'poll' } });
      expect(r.statusCode, r.body).toBe(201);
      rules.document.kinds['water-level'].find((x: { id: string }) => x.id === 'level-tier1').value = 0.5;
      await putOk('rules', rules.document, rules.version);
      queries = 0;
      t = 300;
      await poll.tick();
      expect(queries).toBe(1);
      expect(told.map(([name]) => name)).toEqual(['registry', 'config']);
      expect(told[0][1]).toBe(told[1][1]);
      expect(told[0][1].registry).toBe(version + 1);
      expect(told[0][1].config.get('rules')).toBe(rules.version + 1);
      expect([...told[0][1].config.keys()].sort()).toEqual(['calendar', 'catalogue', 'emergency', 'escalation', 'routing', 'rules']);
    });

    it('ticks on its timer once started, and not after it is stopped', async () => {
      const told: string[] = [];
      const poll = createVersionPoll({ db: () => database.db, logger: silentLogger() });
      poll.subscribe({ name: 'fast', everyMs: 20, onVersions: async () => void told.push('fast') });
      poll.subscribe({ name: 'slow', everyMs: 3_600_000, onVersions: async () => void told.push('slow') });
      poll.start();
      await eventually(() => told.length >= 3, 5000, 10);
      await poll.stop();
      const n = told.length;
      await new Promise((r) => setTimeout(r, 100));
      expect(told).toHaveLength(n);
      expect(told).not.toContain('slow');
    });
  });
});
