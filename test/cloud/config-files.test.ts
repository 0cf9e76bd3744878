import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { loadConfigFile } from '../../cloud/config/files.ts';
import { createRuleEngine, defaultRuleSet, type RuleSet } from '../../cloud/rules.ts';
import { eventually, runCliOnce } from '../helpers/process.ts';
import { BACKENDS, freshDatabase, profiles, reading, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Configuration files and the database (README "Configuration as data"): the file's values seed a
 * database that has none; an unchanged file leaves what the API changed in force across a restart;
 * an edited file is applied as an audited change (source `file`); a bad file stops the start naming
 * the file, the key and the problem. Two workers on one database: a change on one applies on the other.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(4, 1);
const GW = 'gw-t-0';

function setTier1(set: RuleSet, value: number): RuleSet {
  (set.kinds['water-level'].find((r) => r.id === 'level-tier1') as { value: number }).value = value;
  return set;
}
const rulesWithTier1 = (value: number) => setTier1(defaultRuleSet(profiles), value);

describe('the rule engine under a new rule set', () => {
  it('keeps the hold time of a rule whose definition is unchanged and restarts that of a changed one', () => {
    const set = defaultRuleSet(profiles);
    const tilt = set.kinds['manhole-cover'].find((r) => r.id === 'tilt' || (r.kind === 'threshold' && r.point === 'tilt_deg'))!;
    expect(tilt.kind === 'threshold' && tilt.holdMs).toBeGreaterThan(0);
    const hold = (tilt as { holdMs: number }).holdMs;
    const engine = createRuleEngine(set);
    engine.evaluate('MH-1', 'manhole-cover', { tilt_deg: 40 }, 0, false);
    // Another rule changes: the tilt rule's hold runs on.
    const other = structuredClone(set);
    other.kinds['manhole-cover'].find((r) => r.id !== tilt.id && r.kind === 'threshold')!.severity = 'critical';
    engine.setRuleSet(other);
    expect(engine.evaluate('MH-1', 'manhole-cover', { tilt_deg: 40 }, hold, false).raised.map((b) => b.thresholdId)).toEqual([tilt.id]);

    const engine2 = createRuleEngine(set);
    engine2.evaluate('MH-2', 'manhole-cover', { tilt_deg: 40 }, 0, false);
    // The tilt rule itself changes: its hold starts again at the next reading.
    const changed = structuredClone(set);
    (changed.kinds['manhole-cover'].find((r) => r.id === tilt.id) as { holdMs: number }).holdMs = hold + 1;
    engine2.setRuleSet(changed);
    expect(engine2.evaluate('MH-2', 'manhole-cover', { tilt_deg: 40 }, hold, false).raised).toEqual([]);
    expect(engine2.evaluate('MH-2', 'manhole-cover', { tilt_deg: 40 }, 2 * hold + 1, false).raised.map((b) => b.thresholdId)).toEqual([tilt.id]);
  });
});

describe('a config file naming a bad value', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-config-'));
  afterEach(() => undefined);
  it('stops the start naming the file, the key and the problem', async () => {
    const file = join(dir, 'routing.yaml');
    writeFileSync(file, 'rules:\n  - { hazard: waterlogging, unit: no-such-unit }\n');
    expect(() => loadConfigFile('routing', file, { district, profiles })).toThrow(/routing\.yaml:\n {2}rules\[0\]\.unit: unknown unit "no-such-unit"/);
    writeFileSync(file, 'rules:\n  - { hazard: waterlogging }\n');
    expect(() => loadConfigFile('routing', file, { district, profiles })).toThrow(/routing\.yaml:\n {2}rules\[0\]\.unit: is required/);
    await expect(buildCloud({ db: { kind: 'sqlite', file: join(dir, 'x.db') }, district, profiles, escalation: { tickMs: 5 } }))
      .rejects.toThrow(/escalation invalid: tickMs: /);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('citysteward config', () => {
  it('replaces a kind from a YAML file through the API, refuses a bad one naming the key, and lists both changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-config-cli-'));
    const cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles });
    try {
      await cloud.start();
      const url = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
      const token = await cloud.tokens.create('admin');
      const file = join(dir, 'escalation.yaml');
      writeFileSync(file, 'remindBeforeMs: 3600000\nackWithinMs: 300000\nstepMs: 1800000\ntickMs: 5000\n');
      const set = await runCliOnce(['config', 'set', 'escalation', file, '--base-version', '1', '--url', url, '--token', token, '--data-dir', dir]);
      expect(set.code).toBe(0);
      expect(JSON.parse(set.output)).toMatchObject({ kind: 'escalation', version: 2, changed: true, summary: 'changed ackWithinMs 900000 → 300000' });
      expect(cloud.escalator!.policy().ackWithinMs).toBe(300_000);
      writeFileSync(file, 'remindBeforeMs: 3600000\nackWithinMs: 300000\nstepMs: 1800000\ntickMs: 5\n');
      const bad = await runCliOnce(['config', 'set', 'escalation', file, '--url', url, '--token', token, '--data-dir', dir]);
      expect(bad.code).not.toBe(0);
      expect(bad.output).toContain('CS_CLOUD_CONFIG_REFUSED');
      expect(bad.output).toMatch(/tickMs: /);
      const log = await cloud.config.changes({ limit: 5, kind: 'escalation' });
      expect(log.map((c) => [c.outcome, c.version])).toEqual([['refused', null], ['applied', 2], ['applied', 1]]);
    } finally {
      await cloud.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(BACKENDS)('configuration files and workers on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    const clouds: Cloud[] = [];
    let drop: (() => Promise<void>) | undefined;
    let seq = 0;
    afterEach(async () => {
      for (const c of clouds.splice(0)) await c.stop();
      await drop?.();
      drop = undefined;
    });
    const start = async (db: DbOptions, rules: RuleSet, configSyncMs?: number) => {
      const cloud = await buildCloud({ db, district, profiles, rules, now: () => T0 + seq * 1000, configSyncMs });
      await cloud.start();
      clouds.push(cloud);
      return cloud;
    };
    const stop = async (cloud: Cloud) => {
      await cloud.stop();
      clouds.splice(clouds.indexOf(cloud), 1);
    };
    const breaches = async (cloud: Cloud, device: string, level: number) => {
      const r = await cloud.ingest(GW, topics.up(GW, device), reading(device, ++seq, T0 + seq * 1000, { level_m: level }));
      return (r as { cases: unknown[] }).cases.length > 0;
    };
    const rulesDoc = async (cloud: Cloud) => cloud.config.get('rules');

    it('seeds from the file, keeps an API change over a restart with the same file, applies an edited file as an audited change', async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      let cloud = await start(fresh.db, rulesWithTier1(0.7));
      expect((await rulesDoc(cloud)).version).toBe(1);
      const admin = await cloud.tokens.create('admin');
      const doc = (await rulesDoc(cloud)).document as RuleSet;
      setTier1(doc, 0.5);
      const put = await cloud.app.inject({ method: 'PUT', url: '/api/config/rules', headers: { authorization: `Bearer ${admin}` }, payload: { document: doc } });
      expect(put.json()).toMatchObject({ version: 2, changed: true });
      await stop(cloud);

      cloud = await start(fresh.db, rulesWithTier1(0.7));
      expect((await rulesDoc(cloud)).version).toBe(2);
      expect(await breaches(cloud, 'WL-T-0001', 0.6)).toBe(true); // the API's 0.5 is in force, not the file's 0.7
      await stop(cloud);

      cloud = await start(fresh.db, rulesWithTier1(0.65));
      expect((await rulesDoc(cloud)).version).toBe(3);
      expect(await breaches(cloud, 'WL-T-0002', 0.6)).toBe(false);
      expect(await breaches(cloud, 'WL-T-0003', 0.66)).toBe(true);
      const log = await cloud.config.changes({ limit: 10, kind: 'rules' });
      expect(log.map((c) => [c.version, c.source, c.actor])).toEqual([[3, 'file', 'config-file'], [2, 'api', expect.stringMatching(/^token:/)], [1, 'file', 'config-file']]);
      expect(log[0].summary).toContain('0.5 → 0.65');
      const verify = await cloud.app.inject({ url: '/api/audit/verify', headers: { authorization: `Bearer ${admin}` } });
      expect(verify.json()).toMatchObject({ ok: true, configLog: { ok: true, rows: 8 } });
    });

    it('a change on one worker applies on the other within its poll interval', async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      const a = await start(fresh.db, rulesWithTier1(0.7), 100);
      const b = await start(fresh.db, rulesWithTier1(0.7), 100);
      expect(await breaches(b, 'WL-T-0001', 0.6)).toBe(false);
      const doc = (await rulesDoc(a)).document as RuleSet;
      setTier1(doc, 0.5);
      await a.config.change('rules', doc, { actor: 'user:test', source: 'api' });
      const started = Date.now();
      // Each try on another device (a device with an open case would not open a second).
      let n = 1;
      await eventually(async () => (await breaches(b, `WL-T-000${1 + (n++ % 4)}`, 0.6)) || undefined, 5000, 50);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await b.config.changes({ limit: 1, kind: 'rules' }))[0]).toMatchObject({ version: 2, actor: 'user:test' });
    });

    // Guards against a worker giving up for good on a change that named a unit its registry had not polled yet:
    // it marked the version applied without applying it, so the two workers routed the same hazard apart until the next change.
    it('a change naming a unit another worker\'s registry has not seen yet is applied there once it has', async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      const worker = async () => {
        const c = await buildCloud({ db: fresh.db, district, profiles, now: () => T0 + seq * 1000, configSyncMs: 60_000, registry: { pollMs: 0 } });
        await c.start();
        clouds.push(c);
        return c;
      };
      const a = await worker();
      const b = await worker();
      const admin = await a.tokens.create('admin');
      const call = (c: Cloud, method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => c.app.inject({ method, url, headers: { authorization: `Bearer ${admin}` }, ...(payload ? { payload } : {}) });
      expect((await call(a, 'POST', '/api/registry/units', { id: 'xz-new-unit', name: 'New unit' })).statusCode).toBe(201);
      const { version, document } = (await call(a, 'GET', '/api/config/routing')).json();
      expect((await call(a, 'PUT', '/api/config/routing', { baseVersion: version, document: { ...document, rules: [{ hazard: 'waterlogging', unit: 'xz-new-unit' }] } })).statusCode).toBe(200);
      await b.config.sync(); // b does not know the unit yet: not applied
      await b.registry.refresh();
      await b.config.sync();
      const r = await b.ingest(GW, topics.up(GW, 'WL-T-0001'), reading('WL-T-0001', ++seq, T0 + seq * 1000, { level_m: 0.9 })) as { cases: { caseId: string }[] };
      expect((await call(b, 'GET', `/api/cases/${r.cases[0].caseId}`)).json().unit).toBe('xz-new-unit');
    });
  });
});
