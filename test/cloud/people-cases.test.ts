import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import type { DbOptions } from '../../cloud/db/database.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, ROOT, type Backend } from './fixtures.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCalendar } from '../../cloud/calendar.ts';

/**
 * Cases from people (issue 13), on SQLite and PostgreSQL: every case says its source, category,
 * reporter, self-correction and district; the inspector role sees only the cases it registered.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const WL = district.devices.find((d) => d.id === 'XZ-WL-001')!;
const GW = 'gw-xz-jida';
const MH = district.devices.find((d) => d.componentCode.slice(6, 10) === '0104')!;
const JPEG = readFileSync(join(ROOT, 'test/fixtures/photos', 'tiny.jpg'));
const HOUR = 3_600_000;
const POINT = { lat: 22.2712, lon: 113.5671, address: '情侣中路, 香洲区' };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

describe.each(BACKENDS)('cases from people on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let dbOpts: DbOptions;
    let drop: () => Promise<void>;
    let base: string;
    let photosDir: string;
    const clock = T0;
    const tok: Record<string, string> = {};

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      dbOpts = fresh.db;
      drop = fresh.drop;
      photosDir = mkdtempSync(join(tmpdir(), 'cs-people-'));
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, photos: { dir: photosDir } });
      await cloud.start();
      for (const r of ['operator', 'admin', 'inspector'] as const) tok[r] = await cloud.tokens.create(r);
      tok.inspector2 = await cloud.tokens.create('inspector');
      tok.crew = await cloud.tokens.create('crew', 'xz-municipal');
      base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
      rmSync(photosDir, { recursive: true, force: true });
    });

    const register = async (token: string, body: Json): Promise<{ status: number; body: Json; replayed: boolean }> => {
      const r = await fetch(`${base}/api/cases`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as Json, replayed: r.headers.get('x-cs-replayed') === '1' };
    };
    const fetchJson = async (url: string, token: string): Promise<Json> => (await (await fetch(`${base}${url}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;
    const uploadPhoto = async (token: string): Promise<string> => {
      const form = new FormData();
      form.append('photo', new Blob([JPEG], { type: 'image/jpeg' }), 'site.jpg');
      const r = await fetch(`${base}/api/photos`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
      expect(r.status).toBe(201);
      return ((await r.json()) as Json).photos[0].id as string;
    };

    const get = (url: string, token: string) => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

    it('a sensor case says source sensor and its district from the component code', async () => {
      const r = await cloud.ingest(GW, topics.up(GW, WL.id), reading(WL.id, 1, clock, { level_m: 0.95, battery_pct: 90 }));
      expect(r.status).toBe('stored');
      const list = (await get('/api/cases', tok.operator)).json() as { items: Record<string, unknown>[] };
      expect(list.items).toHaveLength(1);
      expect(list.items[0]).toMatchObject({ source: 'sensor', category: 'E0506', reporter: null, selfCorrected: false, district: WL.componentCode.slice(0, 6) });
      expect((await get('/api/cases?source=sensor&district=440402', tok.operator)).json().items).toHaveLength(1);
      expect((await get('/api/cases?source=inspector', tok.operator)).json().items).toHaveLength(0);
    });

    it('an inspector sees neither others\' cases nor the alarms and live events', async () => {
      const id = ((await get('/api/cases', tok.operator)).json().items[0] as { id: string }).id;
      expect((await get('/api/cases', tok.inspector)).json().items).toEqual([]);
      expect((await get(`/api/cases/${id}`, tok.inspector)).statusCode).toBe(404);
      expect((await get('/api/alarms', tok.inspector)).statusCode).toBe(403);
      expect((await get('/api/events', tok.inspector)).statusCode).toBe(403);
      expect((await get('/api/devices', tok.inspector)).statusCode).toBe(200);
    });

    it('one open case per asset and hazard holds for sensor cases only', async () => {
      const db = openDatabase(dbOpts);
      try {
        const first = await db.db.selectFrom('cases').selectAll().executeTakeFirstOrThrow();
        await expect(db.write((trx) => trx.insertInto('cases').values({ ...first, id: 'C-TEST-S' }).execute())).rejects.toThrow();
        await db.write((trx) => trx.insertInto('cases').values({ ...first, id: 'C-TEST-P', source: 'inspector', reporter: 'user:li' }).execute());
        expect(await db.db.selectFrom('cases').select('id').execute()).toHaveLength(2);
        await db.write((trx) => trx.deleteFrom('cases').where('id', '=', 'C-TEST-P').execute());
      } finally {
        await db.close();
      }
    });

    it('serves the catalogue: components and events, and every sensor hazard of the demo in exactly one category', async () => {
      const cat = await fetchJson('/api/catalogue', tok.inspector);
      const codes = cat.categories.map((c: Json) => c.code);
      expect(codes).toEqual(expect.arrayContaining(['E0102', 'E0506', 'E0202', 'C0104']));
      const hazards = cat.categories.flatMap((c: Json) => c.hazards ?? []);
      for (const h of ['cover-open', 'water-in-well', 'gas', 'waterlogging', 'pressure-low', 'pressure-high', 'low-battery', 'offline', 'implausible']) {
        expect(hazards.filter((x: string) => x === h), h).toHaveLength(1);
      }
      expect(cat.categories.find((c: Json) => c.code === 'E0102')).toMatchObject({ kind: 'event', major: '01', minor: '02', name: { zh: '暴露垃圾' }, limit: { amount: 4, unit: 'workHours' } });
    });

    it('an inspector registers exposed garbage with a photo: dispatched to the routed unit, due in 4 working hours', async () => {
      const photo = await uploadPhoto(tok.inspector);
      const r = await register(tok.inspector, { category: 'E0102', location: POINT, description: '路边垃圾堆放', photos: [photo], source: 'citizen', clientId: 'phone-1-0001' });
      expect(r.status).toBe(201);
      const due = createCalendar().due(T0, { amount: 4, unit: 'workHours' });
      expect(r.body).toMatchObject({
        source: 'inspector', category: 'E0102', state: 'dispatched', unit: 'xz-municipal', device: '', selfCorrected: false, district: '440402',
        location: { lat: POINT.lat, lon: POINT.lon, address: POINT.address }, deadline: new Date(due).toISOString(), emergency: false,
      });
      expect(r.body.reporter).toMatch(/^token:/);
      expect(r.body.photos.map((p: Json) => [p.id, p.stage])).toEqual([[photo, 'register']]);
      const detail = await fetchJson(`/api/cases/${r.body.id}`, tok.inspector);
      expect(detail.history.map((h: Json) => [h.action, h.role, h.toState])).toEqual([['register', 'inspector', 'registered'], ['dispatch', 'inspector', 'dispatched']]);
      expect((await fetchJson('/api/cases', tok.inspector)).items.map((c: Json) => c.id)).toEqual([r.body.id]);
      expect((await fetchJson(`/api/cases/${r.body.id}`, tok.inspector2)).code).toBe('CS_CLOUD_CASE_NOT_FOUND');
      const img = await fetch(`${base}/api/photos/${photo}`, { headers: { authorization: `Bearer ${tok.inspector}` } });
      expect(img.status).toBe(200);

      // The phone resends: the first case, once.
      const again = await register(tok.inspector, { category: 'E0102', location: POINT, description: '路边垃圾堆放', photos: [photo], clientId: 'phone-1-0001' });
      expect(again).toMatchObject({ status: 200, replayed: true, body: { id: r.body.id } });
      expect((await fetchJson('/api/cases?source=inspector', tok.operator)).items).toHaveLength(1);
      // Another inspector cannot attach that photo (only its uploader, or a photo no case holds).
      const other = await register(tok.inspector2, { category: 'E0102', location: POINT, description: 'x', photos: [photo] });
      expect(other.body.code).toBe('CS_CLOUD_CASE_BAD_INPUT');
    });

    it('a self-corrected case is registered and closed in one step', async () => {
      const r = await register(tok.inspector, { category: 'E0201', location: POINT, description: '清除小广告', selfCorrected: true });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ source: 'inspector', state: 'closed', selfCorrected: true, overdue: false });
      const detail = await fetchJson(`/api/cases/${r.body.id}`, tok.inspector);
      expect(detail.history.map((h: Json) => [h.action, h.fromState, h.toState])).toEqual([
        ['register', null, 'registered'], ['handle', 'registered', 'handled'], ['close', 'handled', 'closed']]);
      const audit = await fetchJson('/api/audit/verify', tok.admin);
      expect(audit.ok).toBe(true);
    });

    it('an operator registers a hotline call about an asset: routed to its owner, located at it', async () => {
      const r = await register(tok.operator, { category: 'C0104', location: { componentCode: MH.componentCode }, description: '井盖破损, 来电', source: 'hotline' });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({
        source: 'hotline', category: 'C0104', device: MH.id, componentCode: MH.componentCode, unit: MH.ownerUnit,
        location: { lat: MH.lat, lon: MH.lon }, district: MH.componentCode.slice(0, 6), class: 'routine',
      });
    });

    it('an urgent category runs on continuous hours under the 12-hour cap, with its sub-deadlines', async () => {
      const r = await register(tok.operator, { category: 'E0501', location: POINT, description: '路面塌陷', source: 'citizen' });
      expect(r.body).toMatchObject({ class: 'urgent', emergency: true, deadline: new Date(T0 + 6 * HOUR).toISOString(), unit: 'xz-municipal' });
      expect(r.body.milestones).toEqual([{ name: 'fenced', due: new Date(T0 + HOUR).toISOString(), reachedAt: null }]);
    });

    it('refuses bad input with specific errors', async () => {
      const cases: [string, Json, string, RegExp][] = [
        [tok.inspector, { category: 'E9999', location: POINT, description: 'x' }, 'CS_CLOUD_CATEGORY_UNKNOWN', /no category "E9999"/],
        [tok.inspector, { category: 'E0102', location: { lat: 39.9, lon: 116.4 }, description: 'x' }, 'CS_CLOUD_CASE_BAD_INPUT', /outside the city's area/],
        [tok.inspector, { category: 'E0102', location: { lat: 113.5, lon: 22.3 }, description: 'x' }, 'CS_CLOUD_VALIDATION', /lat/],
        [tok.inspector, { category: 'E0102', location: { address: '某路' }, description: 'x' }, 'CS_CLOUD_CASE_BAD_INPUT', /lat and lon, or the componentCode/],
        [tok.inspector, { category: 'E0102', location: { componentCode: '4404029999999999' }, description: 'x' }, 'CS_CLOUD_CASE_BAD_INPUT', /no asset with component code/],
        [tok.inspector, { category: 'E9001', location: POINT, description: 'x' }, 'CS_CLOUD_CASE_BAD_INPUT', /give location.componentCode/],
        [tok.inspector, { category: 'E0102', location: POINT, description: 'x', photos: ['0'.repeat(64)] }, 'CS_CLOUD_CASE_BAD_INPUT', /upload with POST \/api\/photos/],
        [tok.operator, { category: 'E0102', location: POINT, description: 'x' }, 'CS_CLOUD_CASE_BAD_INPUT', /source is required/],
        [tok.operator, { category: 'E0102', location: POINT, description: 'x', source: 'inspector' }, 'CS_CLOUD_CASE_BAD_INPUT', /for inspectors/],
        [tok.operator, { category: 'E0102', location: POINT, description: 'x', source: 'hotline', selfCorrected: true }, 'CS_CLOUD_CASE_BAD_INPUT', /only an inspector/],
        [tok.crew, { category: 'E0102', location: POINT, description: 'x' }, 'CS_CLOUD_FORBIDDEN', /may not/],
      ];
      for (const [token, body, code, message] of cases) {
        const r = await register(token, body);
        expect([r.body.code, r.body.message], JSON.stringify(body)).toEqual([code, expect.stringMatching(message)]);
      }
    });
  });
});
