import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, createTokenInDatabase, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/** The REST API (auth, devices, readings, cases, units, OpenAPI), on SQLite and on PostgreSQL alike. */

const T0 = Date.parse('2026-11-25T02:00:00Z');

const API_ROUTES = [
  '/api/devices', '/api/devices/XZ-WL-001', '/api/devices/XZ-WL-001/readings', '/api/cases', '/api/cases/C-20261125-0001', '/api/units',
];

function payload(device: string, seq: number, tsMs: number, values: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(tsMs).toISOString(), device, values }));
}

describe.each(BACKENDS)('REST API on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  if (skip) console.warn(`REST API on ${backend}: skipped, PostgreSQL is not reachable`);
  describe.skipIf(skip)(backend, () => {
    let dbOpts: DbOptions;
    let drop: () => Promise<void>;
    let cloud: Cloud;
    let clock = T0;
    const tok: Record<string, string> = {};

    const get = (url: string, token?: string) =>
      cloud.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      dbOpts = fresh.db;
      drop = fresh.drop;
      // The case clock off: this suite moves the injected clock by hand (escalation.test.ts covers it).
      // Readings up to 9 minutes ahead of the held clock: a skew allowance to match (README "Topics").
      cloud = await buildCloud({ db: dbOpts, district, profiles, now: () => clock, escalation: false, readings: { maxSkewMs: 10 * 60_000 } });
      await cloud.start();
      tok.operator = await cloud.tokens.create('operator');
      tok.drainage = await cloud.tokens.create('crew', 'xz-drainage');
      tok.gas = await cloud.tokens.create('crew', 'zh-gas');
      // Ten readings of a water level a minute apart; the last three breach (one case for xz-drainage).
      for (let i = 0; i < 10; i++) {
        await cloud.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'),
          payload('XZ-WL-001', i + 1, T0 + i * 60_000, { level_m: i >= 7 ? 0.9 : 0.1, battery_pct: 90 }));
      }
      // An open cover: one case for zh-gas.
      await cloud.ingest('gw-xz-gongbei', topics.up('gw-xz-gongbei', 'XZ-MH-001'), payload('XZ-MH-001', 1, T0, { cover_open: true }));
      clock = T0 + 10 * 60_000;
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    it('answers 401 with a code on every /api route without a token, and with a bad one', async () => {
      for (const url of API_ROUTES) {
        const none = await get(url);
        expect(none.statusCode, url).toBe(401);
        expect(none.json(), url).toMatchObject({ statusCode: 401, code: 'CS_CLOUD_AUTH_MISSING', error: 'Unauthorized' });
        expect(none.headers['www-authenticate']).toBe('Bearer');
        const bad = await get(url, 'cst_' + 'A'.repeat(43));
        expect(bad.statusCode, url).toBe(401);
        expect(bad.json().code).toBe('CS_CLOUD_AUTH_INVALID');
        const garbage = await cloud.app.inject({ method: 'GET', url, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
        expect(garbage.json().code).toBe('CS_CLOUD_AUTH_INVALID');
      }
    });

    it('keeps unknown routes behind the token too', async () => {
      expect((await get('/api/nothing')).statusCode).toBe(401);
      const r = await get('/api/nothing', tok.operator);
      expect(r.statusCode).toBe(404);
      expect(r.json().code).toBe('CS_CLOUD_ROUTE_NOT_FOUND');
    });

    it('serves /healthz and the docs without a token', async () => {
      const h = await get('/healthz');
      expect(h.statusCode).toBe(200);
      expect(h.json()).toEqual({ status: 'ok', db: 'ok', mqtt: 'disabled' });
      expect((await get('/docs')).statusCode).toBeLessThan(400);
      expect((await get('/docs/json')).statusCode).toBe(200);
    });

    it('lists every route in the OpenAPI document, with bearer security', async () => {
      const doc = (await get('/docs/json')).json();
      expect(doc.openapi).toMatch(/^3\./);
      for (const p of ['/healthz', '/api/devices', '/api/devices/{id}', '/api/devices/{id}/readings', '/api/cases', '/api/cases/{id}', '/api/units']) {
        expect(doc.paths[p]?.get, p).toBeDefined();
      }
      expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(doc.paths['/api/devices/{id}/readings'].get.parameters.map((x: { name: string }) => x.name)).toEqual(expect.arrayContaining(['from', 'to', 'limit']));
    });

    it('lists devices with location, gateway, latest values, status and open cases', async () => {
      const r = await get('/api/devices', tok.operator);
      expect(r.statusCode).toBe(200);
      const items = r.json().items as Array<Record<string, any>>;
      expect(items).toHaveLength(district.devices.length);
      const wl = items.find((d) => d.id === 'XZ-WL-001')!;
      expect(wl).toMatchObject({
        profile: 'water-level', kind: 'water-level', gateway: 'gw-xz-jida', ownerUnit: 'xz-drainage', componentCode: '4404020520000001',
        location: { lat: 22.26202, lon: 113.56861 }, openCases: 1,
        latest: { seq: 10, ts: new Date(T0 + 9 * 60_000).toISOString(), values: { level_m: 0.9, battery_pct: 90 } },
      });
      // Last heard at T0 (the clock during ingest), now T0 + 10 min: silent for more than 3 polls.
      expect(wl).toMatchObject({ link: 'offline', status: 'silent', tier: 'major', district: '440402', lastSeen: new Date(T0).toISOString() });
      expect(items.find((d) => d.id === 'XZ-PL-001')).toMatchObject({ link: 'never-seen', status: 'silent', tier: null, lastSeen: null });
    });

    it('shows a device online while it reports within three poll intervals', async () => {
      const saved = clock;
      clock = T0 + 2000;
      try {
        // Its level breaches (an active alarm): online, in alarm.
        expect((await get('/api/devices/XZ-WL-001', tok.operator)).json()).toMatchObject({ link: 'online', status: 'alarm' });
      } finally {
        clock = saved;
      }
      const missing = await get('/api/devices/XZ-NOPE', tok.operator);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().code).toBe('CS_CLOUD_DEVICE_NOT_FOUND');
    });

    it('filters readings by time range, newest first, with a limit', async () => {
      const from = new Date(T0 + 2 * 60_000).toISOString();
      const to = new Date(T0 + 5 * 60_000).toISOString();
      const r = await get(`/api/devices/XZ-WL-001/readings?from=${from}&to=${to}`, tok.operator);
      expect(r.statusCode).toBe(200);
      expect(r.json().items.map((x: { seq: number }) => x.seq)).toEqual([5, 4, 3]);
      const limited = await get('/api/devices/XZ-WL-001/readings?limit=2', tok.operator);
      expect(limited.json().items.map((x: { seq: number }) => x.seq)).toEqual([10, 9]);
      expect(limited.json().items[0]).toMatchObject({ gateway: 'gw-xz-jida', values: { level_m: 0.9 }, historical: false });
    });

    it('answers a bad from with 400 naming the parameter', async () => {
      const r = await get('/api/devices/XZ-WL-001/readings?from=yesterday', tok.operator);
      expect(r.statusCode).toBe(400);
      expect(r.json()).toMatchObject({ statusCode: 400, code: 'CS_CLOUD_VALIDATION', error: 'Bad Request' });
      expect(r.json().message).toMatch(/"from"/);
      const reversed = await get(`/api/devices/XZ-WL-001/readings?from=${new Date(T0 + 1000).toISOString()}&to=${new Date(T0).toISOString()}`, tok.operator);
      expect(reversed.statusCode).toBe(400);
      expect(reversed.json().code).toBe('CS_CLOUD_BAD_QUERY');
      const badState = await get('/api/cases?state=bogus', tok.operator);
      expect(badState.json().message).toMatch(/"state" must be one of registered, dispatched/);
      const tooMany = await get('/api/devices/XZ-WL-001/readings?limit=20000', tok.operator);
      expect(tooMany.statusCode).toBe(400);
      expect(tooMany.json().message).toMatch(/"limit"/);
    });

    it('shows an operator every case, with ISO deadline, location and component code', async () => {
      const r = await get('/api/cases', tok.operator);
      expect(r.statusCode).toBe(200);
      const items = r.json().items as Array<Record<string, any>>;
      expect(items.map((c) => c.unit).sort()).toEqual(['xz-drainage', 'zh-gas']);
      const wl = items.find((c) => c.device === 'XZ-WL-001')!;
      expect(wl).toMatchObject({
        hazard: 'waterlogging', class: 'urgent', severity: 'major', state: 'dispatched', emergency: true, breachCount: 3,
        openedAt: new Date(T0).toISOString(), deadline: new Date(T0 + 6 * 3_600_000).toISOString(), lastValue: 0.9,
        location: { lat: 22.26202, lon: 113.56861, address: '莲花路, 香洲区, 珠海' }, componentCode: '4404020520000001',
      });
      const filtered = await get('/api/cases?hazard=cover-open', tok.operator);
      expect(filtered.json().items.map((c: { device: string }) => c.device)).toEqual(['XZ-MH-001']);
    });

    it('pages cases with limit and cursor', async () => {
      const first = (await get('/api/cases?limit=1', tok.operator)).json();
      expect(first.items).toHaveLength(1);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (await get(`/api/cases?limit=1&cursor=${first.nextCursor}`, tok.operator)).json();
      expect(second.items).toHaveLength(1);
      expect(second.items[0].id).not.toBe(first.items[0].id);
      expect(second.nextCursor).toBeNull();
      const bad = await get('/api/cases?cursor=nonsense', tok.operator);
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe('CS_CLOUD_BAD_CURSOR');
    });

    it('shows a crew only its own unit\'s cases, and 404 for another unit\'s case', async () => {
      const mine = (await get('/api/cases', tok.drainage)).json().items as Array<{ id: string; unit: string }>;
      expect(mine.map((c) => c.unit)).toEqual(['xz-drainage']);
      const theirs = (await get('/api/cases', tok.gas)).json().items as Array<{ id: string; unit: string }>;
      expect(theirs.map((c) => c.unit)).toEqual(['zh-gas']);
      expect((await get('/api/cases?unit=zh-gas', tok.drainage)).json().items).toEqual([]);

      const own = await get(`/api/cases/${mine[0].id}`, tok.drainage);
      expect(own.statusCode).toBe(200);
      // Three samples in breach, nothing changed after the first: no row per sample (history records changes).
      expect(own.json().history.map((h: { action: string }) => h.action)).toEqual(['register', 'dispatch']);
      const other = await get(`/api/cases/${theirs[0].id}`, tok.drainage);
      expect(other.statusCode).toBe(404);
      expect(other.json().code).toBe('CS_CLOUD_CASE_NOT_FOUND');
      expect((await get(`/api/cases/${theirs[0].id}`, tok.operator)).statusCode).toBe(200);

      // Regression: the device list counted every unit's open cases, revealing them to a crew.
      const gasDevice = (await get(`/api/cases/${theirs[0].id}`, tok.operator)).json().device as string;
      const asOperator = (await get(`/api/devices/${gasDevice}`, tok.operator)).json();
      const asDrainage = (await get(`/api/devices/${gasDevice}`, tok.drainage)).json();
      expect(asOperator.openCases).toBeGreaterThan(0);
      expect(asDrainage.openCases).toBe(0);
      const listed = (await get('/api/devices', tok.drainage)).json().items as Array<{ id: string; openCases: number }>;
      expect(listed.find((d) => d.id === gasDevice)!.openCases).toBe(0);
    });

    it('lists units with their open and overdue case counts', async () => {
      const items = (await get('/api/units', tok.operator)).json().items as Array<Record<string, any>>;
      expect(items.map((u) => u.id)).toEqual(district.units.map((u) => u.id));
      expect(items.find((u) => u.id === 'xz-drainage')).toMatchObject({ openCases: 1, overdueCases: 0, dutyContact: '+86 756 000 0303' });
    });

    it('accepts a token issued into the same database by the CLI helper', async () => {
      const token = await createTokenInDatabase(dbOpts, 'commander');
      expect(token).toMatch(/^cst_[A-Za-z0-9_-]{43}$/);
      expect((await get('/api/units', token)).statusCode).toBe(200);
    });

    it('refuses a crew token without a unit and a unit the district does not know', async () => {
      await expect(cloud.tokens.create('crew')).rejects.toMatchObject({ code: 'CS_CLOUD_TOKEN_INVALID' });
      await expect(cloud.tokens.create('crew', 'no-such-unit')).rejects.toMatchObject({ code: 'CS_CLOUD_TOKEN_INVALID' });
    });
  });
});
