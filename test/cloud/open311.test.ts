import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { withKeyStore } from '../../cloud/open311/keys.ts';
import { BACKENDS, freshDatabase, profiles, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Citizen reports through Open311 GeoReport v2 (issue 13), as a client app sees them over a real socket,
 * in JSON and XML: the services, a request posted with an api_key and read back, an operator's
 * acceptance (受理) registering and dispatching the case, the crew and the verifier closing it, and
 * the request closed with expected_datetime from the category's time limit; refusals and the spec's errors.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const district = syntheticDistrict(4, 1);
const xml = new XMLParser({ parseTagValue: false, isArray: (name) => ['service', 'request', 'error'].includes(name) });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = (r: Response): Promise<any> => r.json();
const CODE = 'E0506'; // road waterlogging: urgent, 6 hours, routed to xz-drainage (cloud/catalogue/demo.json)
const LIMIT_MS = 6 * HOUR;

describe.each(BACKENDS)('Open311 on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let base = '';
    let clock = T0;
    let key = '';
    let keyId = '';
    let dbOpts: DbOptions;
    const tok: Record<string, string> = {};
    const ids: string[] = [];

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      dbOpts = fresh.db;
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, emergency: false });
      await cloud.start();
      for (const r of ['operator', 'verifier', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', 'xz-drainage');
      ({ key, id: keyId } = await withKeyStore(fresh.db, (k) => k.create('城市管家 app')));
      base = `${await cloud.app.listen({ host: '127.0.0.1', port: 0 })}/open311/v2`;
    });
    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
    const form = (path: string, fields: Record<string, string>) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: new URLSearchParams(fields).toString() });
    const api = (method: string, path: string, token: string, body?: unknown) => fetch(`${base.replace('/open311/v2', '')}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    const one = async (id: string, format = 'json') => {
      const r = await get(`/requests/${id}.${format}`);
      expect(r.status).toBe(200);
      return format === 'json' ? (await json(r))[0] : xml.parse(await r.text()).service_requests.request[0];
    };

    it('lists the services in JSON and XML, and a service definition', async () => {
      const j = await get('/services.json', { 'accept-language': 'en' });
      expect(j.status).toBe(200);
      expect(j.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const services = await j.json() as Record<string, unknown>[];
      const s = services.find((x) => x.service_code === CODE);
      expect(s).toMatchObject({ service_name: expect.stringMatching(/waterlogging/i), metadata: false, type: 'realtime', group: expect.any(String) });
      const x = await get('/services.xml');
      expect(x.headers.get('content-type')).toBe('text/xml; charset=utf-8');
      const body = await x.text();
      expect(body.startsWith('<?xml version="1.0" encoding="utf-8"?>')).toBe(true);
      const parsed = xml.parse(body).services.service as Record<string, string>[];
      expect(parsed.map((p) => p.service_code)).toEqual(services.map((p) => p.service_code));
      expect(parsed.find((p) => p.service_code === CODE)!.service_name).toMatch(/积水/);
      expect(await (await get(`/services/${CODE}.json`)).json()).toEqual({ service_code: CODE, attributes: [] });
      expect(xml.parse(await (await get(`/services/${CODE}.xml`)).text()).service_definition.service_code).toBe(CODE);
    });

    it('takes a request posted with an api_key (form-urlencoded and JSON) and shows it awaiting acceptance', async () => {
      const r = await form('/requests.json', {
        api_key: key, service_code: CODE, lat: '22.2701', long: '113.5502', address_string: '吉大路 12 号', description: '路面积水约 20 厘米',
        email: 'citizen@example.cn', phone: '13800000000', media_url: 'https://example.cn/p/1.jpg', 'attribute[x]': '1',
      });
      expect(r.status, await r.clone().text()).toBe(200);
      const [created] = await r.json() as { service_request_id: string; service_notice: string }[];
      expect(created.service_request_id).toMatch(/^R-\d{8}-[0-9a-f]{6}$/);
      ids.push(created.service_request_id);
      clock += MIN;
      const x = await fetch(`${base}/requests.xml`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: key, service_code: CODE, address_string: '情侣路', description: 'duplicate?' }) });
      expect(x.status).toBe(200);
      ids.push(xml.parse(await x.text()).service_requests.request[0].service_request_id);

      const j = await one(ids[0]);
      expect(j).toMatchObject({
        service_request_id: ids[0], status: 'open', status_notes: '待受理', service_code: CODE, description: '路面积水约 20 厘米',
        agency_responsible: null, expected_datetime: null, requested_datetime: new Date(T0).toISOString(), address: '吉大路 12 号',
        lat: 22.2701, long: 113.5502, media_url: 'https://example.cn/p/1.jpg',
      });
      expect(JSON.stringify(j)).not.toContain('13800000000'); // contact details never leave through Open311
      expect((await one(ids[1], 'xml')).status).toBe('open');
      const en = await json(await get(`/requests/${ids[0]}.json`, { 'accept-language': 'en-GB,en;q=0.9' }));
      expect(en[0].status_notes).toBe('awaiting acceptance');
    });

    it('lets an operator list pending reports with the contact, and refuse one with a reason the citizen sees', async () => {
      const r = await api('GET', '/api/citizen-reports?status=pending', tok.operator);
      expect(r.status).toBe(200);
      const items = (await json(r)).items as { id: string; contact: Record<string, string> }[];
      expect(items.map((i) => i.id).sort()).toEqual([...ids].sort());
      expect(items.find((i) => i.id === ids[0])!.contact).toEqual({ email: 'citizen@example.cn', phone: '13800000000' });
      expect((await api('GET', '/api/citizen-reports', tok.crew)).status).toBe(403);
      const noReason = await api('POST', `/api/citizen-reports/${ids[1]}/refuse`, tok.operator, {});
      expect(noReason.status).toBe(400);
      clock += MIN;
      expect((await api('POST', `/api/citizen-reports/${ids[1]}/refuse`, tok.operator, { reason: '重复举报，已有案件处理中' })).status).toBe(200);
      const x = await one(ids[1], 'xml');
      expect(x).toMatchObject({ status: 'closed', status_notes: '重复举报，已有案件处理中', updated_datetime: new Date(clock).toISOString() });
      const again = await api('POST', `/api/citizen-reports/${ids[1]}/accept`, tok.operator, {});
      expect(again.status).toBe(409);
      expect((await json(again)).code).toBe('CS_CLOUD_REPORT_DECIDED');
    });

    it('accepts a report: the case is dispatched, expected_datetime is its deadline, and the request closes with the case', async () => {
      clock += MIN;
      const acceptedAt = clock;
      const a = await api('POST', `/api/citizen-reports/${ids[0]}/accept`, tok.operator, {});
      expect(a.status, await a.clone().text()).toBe(200);
      const { caseId } = await a.json() as { caseId: string };
      const c = await json(await api('GET', `/api/cases/${caseId}`, tok.operator));
      expect(c).toMatchObject({ state: 'dispatched', unit: 'xz-drainage', source: 'citizen', category: CODE });
      expect(Date.parse(c.deadline)).toBe(acceptedAt + LIMIT_MS);
      let j = await one(ids[0]);
      expect(j).toMatchObject({ status: 'open', expected_datetime: new Date(acceptedAt + LIMIT_MS).toISOString(), agency_responsible: expect.any(String) });
      expect(j.status_notes).toContain(caseId);

      for (const [action, token, body] of [['accept', tok.crew, {}], ['handle', tok.crew, { notes: '已抽排积水' }], ['verify', tok.verifier, {}]] as const) {
        clock += 10 * MIN;
        const r = await api('POST', `/api/cases/${caseId}/${action}`, token, body);
        expect(r.status, `${action}: ${await r.clone().text()}`).toBe(200);
      }
      j = await one(ids[0]);
      expect(j).toMatchObject({ status: 'closed', updated_datetime: new Date(clock).toISOString(), expected_datetime: new Date(acceptedAt + LIMIT_MS).toISOString() });
      expect(j.status_notes).toBe('已结案'); // not the crew's notes: staff free text stays inside
      const x = await one(ids[0], 'xml');
      expect(x.status).toBe('closed');
    });

    it('filters requests by status, service code, ids and dates', async () => {
      const q = async (qs: string) => ((await (await get(`/requests.json?${qs}`)).json()) as { service_request_id: string }[]).map((r) => r.service_request_id).sort();
      expect(await q('status=closed')).toEqual([...ids].sort());
      expect(await q('status=open')).toEqual([]);
      expect(await q(`service_request_id=${ids[1]}`)).toEqual([ids[1]]);
      expect(await q('service_code=E0102')).toEqual([]);
      expect(await q(`start_date=2026-11-25T02:00:30Z&end_date=2026-11-26T00:00:00%2B08:00`)).toEqual([ids[1]]);
      const x = xml.parse(await (await get('/requests.xml?status=open')).text());
      expect(x.service_requests).toBe('');
    });

    it('accepts a report given by address only once the operator gives the point; another category on request', async () => {
      const r = await form('/requests.json', { api_key: key, service_code: 'E0102', address_string: '情侣中路 88 号', description: '垃圾堆放' });
      const [{ service_request_id: id }] = await json(r);
      const noPoint = await api('POST', `/api/citizen-reports/${id}/accept`, tok.operator, {});
      expect(noPoint.status).toBe(400);
      expect((await json(noPoint)).message).toMatch(/lat and lon/);
      expect((await one(id)).status).toBe('open'); // nothing changed
      const ok = await api('POST', `/api/citizen-reports/${id}/accept`, tok.admin, { lat: 22.2702, lon: 113.5501, category: 'E0104' });
      expect(ok.status, await ok.clone().text()).toBe(200);
      const c = await json(await api('GET', `/api/cases/${(await json(ok)).caseId}`, tok.operator));
      expect(c).toMatchObject({ source: 'citizen', category: 'E0104', state: 'dispatched' });
      expect(await one(id)).toMatchObject({ status: 'open', service_code: 'E0104', expected_datetime: c.deadline });
      // Voided: the request closes with fixed wording; the void reason is staff free text (guards against publishing it).
      clock += MIN;
      expect((await api('POST', `/api/cases/${c.id}/void`, tok.operator, { reason: '现场核实无垃圾，联系王先生 13900000000' })).status).toBe(200);
      expect(await one(id)).toMatchObject({ status: 'closed', status_notes: '已作废', updated_datetime: new Date(clock).toISOString() });
      expect((await one(id, 'json'))).not.toHaveProperty('status_notes', expect.stringContaining('139'));
      expect((await json(await get(`/requests/${id}.json`, { 'accept-language': 'en' })))[0].status_notes).toBe('case voided');
    });

    it('answers the spec\'s errors: no or a bad api_key (403), an unknown service code or id (404), a malformed body or query (400)', async () => {
      const cases: [string, () => Promise<Response>, number, RegExp][] = [
        ['no key', () => form('/requests.json', { service_code: CODE, address_string: 'x' }), 403, /api_key missing/],
        ['bad key', () => form('/requests.json', { api_key: `${key}x`, service_code: CODE, address_string: 'x' }), 403, /api_key invalid/],
        ['unknown code', () => form('/requests.json', { api_key: key, service_code: 'no-such', address_string: 'x' }), 404, /service_code no-such not found/],
        ['no location', () => form('/requests.json', { api_key: key, service_code: CODE }), 400, /location is required/],
        ['lat alone', () => form('/requests.json', { api_key: key, service_code: CODE, lat: '22.1' }), 400, /lat and long/],
        ['bad lat', () => form('/requests.json', { api_key: key, service_code: CODE, lat: '1e3', long: '1' }), 400, /WGS84/],
        ['no code', () => form('/requests.json', { api_key: key, address_string: 'x' }), 400, /service_code was not provided/],
        ['bad JSON', () => fetch(`${base}/requests.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"api_key":"${key}",` }), 400, /JSON/],
        ['text body', () => fetch(`${base}/requests.json`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' }), 400, /form fields/],
        ['XML body', () => fetch(`${base}/requests.json`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' }), 415, /form-urlencoded/],
        ['unknown id', () => get('/requests/R-20261125-000000.json'), 404, /not found/],
        ['unknown service', () => get('/services/no-such.json'), 404, /not found/],
        ['bad date', () => get('/requests.json?start_date=yesterday'), 400, /w3 date-time/],
        ['over 90 days', () => get('/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z'), 400, /90 days/],
        ['bad status', () => get('/requests.json?status=pending'), 400, /status must be/],
        // Guards against reading the key from the query string (it would land in request logs).
        ['key in the query', () => fetch(`${base}/requests.json?api_key=${encodeURIComponent(key)}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `service_code=${CODE}&address_string=x` }), 403, /api_key missing/],
      ];
      for (const [name, call, status, description] of cases) {
        const r = await call();
        expect(r.status, name).toBe(status);
        const body = await r.json() as { code: number; description: string }[];
        expect(body, name).toEqual([{ code: status, description: expect.stringMatching(description) }]);
      }
      const x = await fetch(`${base}/requests.xml`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `service_code=${CODE}` });
      expect(x.status).toBe(403);
      const e = xml.parse(await x.text());
      expect(e.errors.error).toEqual([{ code: '403', description: expect.stringMatching(/api_key missing/) }]);
      // A revoked key is refused.
      expect(await withKeyStore(dbOpts, (k) => k.revoke(keyId))).toBe(true);
      expect((await form('/requests.json', { api_key: key, service_code: CODE, address_string: 'x' })).status).toBe(403);
    });

    // Guards against filtering the status after `limit 1000`: 1000 newer pending reports hid every closed one.
    it('filters the status before the limit of 1000', async () => {
      const closed = ((await (await get('/requests.json?status=closed')).json()) as { service_request_id: string }[]).map((r) => r.service_request_id);
      expect(closed.length).toBeGreaterThan(0);
      const database = openDatabase(dbOpts);
      try {
        await database.write((trx) => trx.insertInto('citizen_reports').values(Array.from({ length: 1000 }, (_, i) => ({
          id: `R-20261126-${String(i).padStart(6, '0')}`, service_code: CODE, description: 'x', lat: 22.27, lon: 113.55, address_string: null, address_id: null,
          media_url: null, contact: '{}', key_id: keyId, state: 'pending', reason: null, requested_at: clock - 1000 + i, updated_at: clock - 1000 + i,
          decided_at: null, decided_by: null, case_id: null,
        }))).execute());
      } finally {
        await database.close();
      }
      const again = ((await (await get('/requests.json?status=closed')).json()) as { service_request_id: string }[]).map((r) => r.service_request_id);
      expect(again).toEqual(closed);
      expect(((await (await get('/requests.json?status=open')).json()) as unknown[]).length).toBe(1000);
    });
  });
});

describe('Open311 rate limit', () => {
  it('answers 429 in the spec\'s format past the burst from one address (the routes have no credential to count)', async () => {
    const fresh = await freshDatabase('sqlite');
    let t = 0;
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false, http: { requestsPerSecond: 1, requestBurst: 2 }, clock: () => t });
    try {
      await cloud.start();
      const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${base}/open311/v2/services.json`)).status);
      expect(statuses).toEqual([200, 200, 429]);
      const r = await fetch(`${base}/open311/v2/requests.xml`);
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(xml.parse(await r.text()).errors.error[0]).toEqual({ code: '429', description: expect.stringMatching(/slow down/) });
      t += 1000;
      expect((await fetch(`${base}/open311/v2/services.json`)).status).toBe(200);
    } finally {
      await cloud.stop();
      await fresh.drop();
    }
  });
});
