import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';

/**
 * A unit a routing rule, the routing's unit members or a catalogue category names cannot be retired, the
 * refusal naming what names it; once the configuration no longer names it, it can (fault guarded: a unit
 * retired under a rule or a category would receive the next case while no one in service could see it).
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');

describe('retiring a unit the case configuration names', () => {
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let admin: string;
  const call = async (method: string, url: string, payload?: object) => {
    const r = await cloud.app.inject({ method: method as 'GET', url, payload, headers: { authorization: `Bearer ${admin}` } });
    return { status: r.statusCode, body: r.json() };
  };
  const config = async (kind: string) => (await call('GET', `/api/config/${kind}`)).body as { version: number; document: any };
  const putConfig = async (kind: string, document: unknown, baseVersion: number) => {
    const r = await call('PUT', `/api/config/${kind}`, { document, baseVersion });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  };

  beforeAll(async () => {
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => T0, escalation: false, registry: { pollMs: 0 } });
    await cloud.start();
    admin = await cloud.tokens.create('admin');
    for (const id of ['unit-by-rule', 'unit-by-members', 'unit-by-category']) {
      expect((await call('POST', '/api/registry/units', { id, name: id })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await cloud?.stop();
    await drop?.();
  });

  it('refuses a unit a routing rule names, naming the rule, and retires it once the rule is gone', async () => {
    const { version, document } = await config('routing');
    const rules = document.rules;
    await putConfig('routing', { ...document, rules: [...rules, { hazard: 'waterlogging', unit: 'unit-by-rule' }] }, version);
    const refused = await call('POST', '/api/registry/units/unit-by-rule/retire');
    expect(refused.status).toBe(400);
    expect(refused.body.message).toBe(`unit unit-by-rule: id: unit "unit-by-rule" is named by routing rule ${rules.length + 1}`);
    expect((await call('GET', '/api/registry/units')).body.items.find((u: { id: string }) => u.id === 'unit-by-rule').retiredAt).toBeNull();
    const now = await config('routing');
    await putConfig('routing', { ...now.document, rules }, now.version);
    expect((await call('POST', '/api/registry/units/unit-by-rule/retire')).status).toBe(200);
  });

  it('refuses a unit the routing\'s unit members name', async () => {
    const { version, document } = await config('routing');
    await putConfig('routing', { ...document, units: { ...document.units, 'unit-by-members': { members: ['Zhao Lei'] } } }, version);
    const refused = await call('POST', '/api/registry/units/unit-by-members/retire');
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/unit "unit-by-members" is named by the routing's units/);
  });

  it('refuses a unit a catalogue category routes to, naming the category', async () => {
    const { version, document } = await config('catalogue');
    const cat = document.categories[0];
    cat.routing = { ...cat.routing, unit: 'unit-by-category' };
    await putConfig('catalogue', document, version);
    const refused = await call('POST', '/api/registry/units/unit-by-category/retire');
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(new RegExp(`unit "unit-by-category" is named by category ${cat.code}`));
  });
});
