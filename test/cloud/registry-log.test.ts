import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase, type DbOptions } from '../../cloud/db/database.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/**
 * The registry log (cloud/registry/log.ts): every registry change is audited like a configuration change,
 * hash-chained and verified (fault guarded: registry changes left only a log line, no record of who changed
 * which device, from what to what, that anyone could check or page through).
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const HEADER = 'id,name,profile,componentCode,lat,lon,address,grid,ownerUnit,maintainerUnit,gateway,bus,unitId,pollMs,scenario';

describe.each(BACKENDS)('the registry log on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let db: DbOptions;
    let drop: () => Promise<void>;
    const tok: Record<string, string> = {};
    const call = async (method: string, url: string, payload?: string | object, type?: string, token = tok.operator) => {
      const r = await cloud.app.inject({ method: method as 'GET', url, payload: payload as string, headers: { authorization: `Bearer ${token}`, ...(type ? { 'content-type': type } : {}) } });
      return { status: r.statusCode, body: r.json() };
    };

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      db = fresh.db;
      drop = fresh.drop;
      cloud = await buildCloud({ db, district, profiles, now: () => T0, escalation: false, registry: { pollMs: 0 } });
      await cloud.start();
      tok.operator = await cloud.tokens.create('operator');
      tok.admin = await cloud.tokens.create('admin');
    });
    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    it('records each device change with who, what, before and after, newest first, filtered by entity and id', async () => {
      expect((await call('POST', '/api/registry/devices', {
        id: 'LOG-1', profile: 'water-level', name: 'Log point', componentCode: '4404020520700101', lat: 22.27, lon: 113.56,
        ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-jida-a', unitId: 201,
      }, 'application/json')).status).toBe(201);
      expect((await call('PATCH', '/api/registry/devices/LOG-1', { name: 'Log point, renamed' }, 'application/json')).status).toBe(200);
      expect((await call('POST', '/api/registry/devices/LOG-1/move', { bus: 'bus-gongbei-a', unitId: 202 }, 'application/json')).status).toBe(200);
      expect((await call('POST', '/api/registry/devices/LOG-1/retire')).status).toBe(200);
      // A refused change leaves no entry.
      expect((await call('POST', '/api/registry/devices/LOG-1/retire')).status).toBe(409);

      const r = await call('GET', '/api/registry/changes?entity=device&id=LOG-1');
      expect(r.status).toBe(200);
      const items = r.body.items as { op: string; actor: string; summary: string; before: any; after: any; at: string; version: number }[];
      expect(items.map((i) => i.op)).toEqual(['retire', 'move', 'update', 'create']);
      expect(new Set(items.map((i) => i.actor)).size).toBe(1);
      expect(items[0].actor).toMatch(/^token:/);
      expect(items[3]).toMatchObject({ summary: 'device LOG-1 created', before: null, after: { id: 'LOG-1', name: 'Log point', bus: 'bus-jida-a', retiredAt: null }, at: new Date(T0).toISOString() });
      expect(items[2].summary).toBe('device LOG-1 updated: name: "Log point" → "Log point, renamed"');
      expect(items[1].summary).toBe('device LOG-1 moved: bus: "bus-jida-a" → "bus-gongbei-a"; unitId: 201 → 202');
      expect(items[1]).toMatchObject({ before: { bus: 'bus-jida-a', unitId: 201 }, after: { bus: 'bus-gongbei-a', unitId: 202 } });
      expect(items[0]).toMatchObject({ summary: 'device LOG-1 retired', before: { retiredAt: null }, after: { retiredAt: T0 } });
      expect(items[0].version).toBe(cloud.registry.version());
      expect(items.map((i) => i.version)).toEqual([...items.map((i) => i.version)].sort((a, b) => b - a));

      // Paged: two at a time.
      const first = await call('GET', '/api/registry/changes?entity=device&id=LOG-1&limit=2');
      expect(first.body.items.map((i: { op: string }) => i.op)).toEqual(['retire', 'move']);
      const second = await call('GET', `/api/registry/changes?entity=device&id=LOG-1&limit=2&before=${first.body.nextBefore}`);
      expect(second.body.items.map((i: { op: string }) => i.op)).toEqual(['update', 'create']);
    });

    it('records other entities the same way, and an import as one entry with its counts', async () => {
      expect((await call('POST', '/api/registry/units', { id: 'log-unit', name: 'Log unit' }, 'application/json')).status).toBe(201);
      expect((await call('PATCH', '/api/registry/units/log-unit', { name: 'Log unit, renamed' }, 'application/json')).status).toBe(200);
      const units = await call('GET', '/api/registry/changes?entity=unit&id=log-unit');
      expect(units.body.items.map((i: { summary: string }) => i.summary)).toEqual(['unit log-unit updated: name: "Log unit" → "Log unit, renamed"', 'unit log-unit created']);

      const lines = [HEADER];
      for (let i = 0; i < 200; i++) lines.push([`LOG-IMP-${i}`, `Imported ${i}`, 'water-level', `4404020520${800000 + i}`, 22.25, 113.55, '', '', 'xz-drainage', 'iot-ops', 'gw-xz-jida', i % 2 ? 'bus-jida-a' : 'bus-jida-b', 100 + Math.floor(i / 2), '', ''].join(','));
      const imp = await call('POST', '/api/registry/devices/import', `${lines.join('\n')}\n`, 'text/csv');
      expect(imp.status, JSON.stringify(imp.body)).toBe(200);
      const all = await call('GET', '/api/registry/changes?limit=1');
      expect(all.body.items).toMatchObject([{ op: 'import', entity: 'device', id: null, summary: 'imported devices: 200 created, 0 updated', after: { created: 200, updated: 0 } }]);
      expect((await call('GET', '/api/registry/changes?entity=device&id=LOG-IMP-7')).body.items).toEqual([]);
    });

    it('is hash-chained: verified clean, and an altered entry is named', async () => {
      const clean = await call('GET', '/api/audit/verify', undefined, undefined, tok.admin);
      expect(clean.body).toMatchObject({ ok: true, registryLog: { ok: true, rows: 7, fault: null } });
      const d = openDatabase(db);
      try {
        await d.db.updateTable('registry_log').set({ actor: 'user:nobody' }).where('seq', '=', 2).execute();
      } finally {
        await d.close();
      }
      const broken = await call('GET', '/api/audit/verify', undefined, undefined, tok.admin);
      expect(broken.body).toMatchObject({ ok: false, registryLog: { ok: false, fault: { seq: 2, kind: 'altered' } } });
    });
  });
});
