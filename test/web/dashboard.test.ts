import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { DEMO_DISTRICT } from '../../cli/demo.ts';

/** The dashboard as the cloud serves it: public page and assets, data behind the bearer token. */

const profiles = loadProfiles();
const district = loadDistrict(DEMO_DISTRICT, profiles);

describe('dashboard files served by the cloud', () => {
  let dir: string;
  let cloud: Cloud;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-web-'));
    cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, escalation: false });
    await cloud.start();
    token = await cloud.tokens.create('operator');
  });

  afterAll(async () => {
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (url: string, headers: Record<string, string> = {}) => cloud.app.inject({ method: 'GET', url, headers });

  it('serves the page at / without a token, as HTML with a strict content security policy', async () => {
    const res = await get('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(String(res.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(res.body).toContain('<script type="module" src="/web/dashboard.js?v=');
    expect(res.body).toContain('<link rel="stylesheet" href="/web/dashboard.css?v=');
  });

  it('serves the module and the stylesheet without a token, with their content types, cached for good only under their content hash', async () => {
    const page = (await get('/')).body;
    for (const [name, type] of [['dashboard.js', 'text/javascript; charset=utf-8'], ['dashboard.css', 'text/css; charset=utf-8']]) {
      const versioned = new RegExp(`/web/${name.replace('.', '\\.')}\\?v=[A-Za-z0-9_-]+`).exec(page)?.[0];
      expect(versioned, name).toBeDefined();
      const res = await get(versioned!);
      expect(res.statusCode, name).toBe(200);
      expect(res.headers['content-type'], name).toBe(type);
      expect(res.headers['cache-control'], name).toBe('public, max-age=31536000, immutable');
      expect(res.body.length, name).toBeGreaterThan(500);
      const plain = await get(`/web/${name}`);
      expect(plain.statusCode, name).toBe(200);
      expect(plain.headers['cache-control'], name).toBe('no-cache');
    }
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await get('/web/dashboard.js');
    const again = await get('/web/dashboard.js', { 'if-none-match': String(first.headers.etag) });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('still asks for a token on /api routes, on the point units and on unknown paths', async () => {
    for (const url of ['/api/devices', '/api/cases', '/api/events', '/api/emergency', '/web/points.json', '/web/other.js', '/index.html']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(401);
      expect(res.json(), url).toMatchObject({ code: 'CS_CLOUD_AUTH_MISSING' });
    }
  });

  it('gives point names and units per profile to a caller with a token', async () => {
    const res = await get('/web/points.json', { authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { profiles: Record<string, { kind: string; points: { key: string; name: string; unit: string }[] }> };
    expect(body.profiles['water-level'].points).toContainEqual(expect.objectContaining({ key: 'level_m', unit: 'm' }));
    expect(Object.keys(body.profiles).sort()).toEqual([...profiles.keys()].sort());
  });

  it('leaves the page and its assets out of the OpenAPI document', async () => {
    const doc = (await get('/docs/json')).json() as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).not.toContain('/');
    expect(Object.keys(doc.paths)).not.toContain('/web/dashboard.js');
    expect(Object.keys(doc.paths)).toContain('/api/devices');
  });
});

// The page's own logic, as pure functions of its module (the DOM part runs only in a browser).
const web = await import(new URL('../../cloud/web/public/dashboard.js', import.meta.url).href);

describe('dashboard logic', () => {
  it('takes the token from a #token= fragment only', () => {
    expect(web.tokenFromFragment('#token=abc.def')).toBe('abc.def');
    expect(web.tokenFromFragment('#x=1&token=t-2')).toBe('t-2');
    expect(web.tokenFromFragment('#')).toBeNull();
    expect(web.tokenFromFragment('')).toBeNull();
    expect(web.tokenFromFragment('#token=')).toBeNull();
  });

  it('projects every device of the district inside the map with its margin, north up and east right', () => {
    const pts = district.devices.map((d) => ({ lat: d.lat, lon: d.lon }));
    const p = web.fitProjection(pts, { width: 1000, margin: 40 });
    for (const d of pts) {
      const [x, y] = p.project(d.lat, d.lon);
      expect(x).toBeGreaterThanOrEqual(39.999);
      expect(x).toBeLessThanOrEqual(1000 - 39.999);
      expect(y).toBeGreaterThanOrEqual(39.999);
      expect(y).toBeLessThanOrEqual(p.height - 39.999);
    }
    const [x0, y0] = p.project(22.27, 113.55);
    const [x1, y1] = p.project(22.28, 113.56);
    expect(x1).toBeGreaterThan(x0);
    expect(y1).toBeLessThan(y0);
    // One scale for both axes: 0.01° of longitude is cos(latitude) × 0.01° of latitude on screen.
    expect((x1 - x0) / (y0 - y1)).toBeCloseTo(Math.cos((22.275 * Math.PI) / 180), 2);
  });

  it('gives a single device an area around it', () => {
    const p = web.fitProjection([{ lat: 22.27, lon: 113.55 }]);
    const [x, y] = p.project(22.27, 113.55);
    expect(x).toBeCloseTo(p.width / 2, 6);
    expect(y).toBeCloseTo(p.height / 2, 6);
    expect(Number.isFinite(p.metresPerUnit)).toBe(true);
  });

  it('orders open cases overdue first, then by deadline, and counts down', () => {
    const now = Date.parse('2026-11-25T06:00:00Z');
    const cases = [
      { id: 'C-3', state: 'dispatched', deadline: '2026-11-25T09:00:00Z' },
      { id: 'C-1', state: 'accepted', deadline: '2026-11-25T05:58:00Z' },
      { id: 'C-2', state: 'dispatched', deadline: '2026-11-25T07:02:03Z' },
      { id: 'C-4', state: 'closed', deadline: '2026-11-25T01:00:00Z' },
      { id: 'C-5', state: 'handled', deadline: '2026-11-25T05:00:00Z' },
    ];
    expect(web.orderCases(cases, now).map((c: { id: string }) => c.id)).toEqual(['C-1', 'C-2', 'C-3', 'C-5']);
    expect(web.countdown(cases[1], now)).toEqual({ overdue: true, text: '超期 overdue 2m 00s' });
    expect(web.countdown(cases[2], now)).toEqual({ overdue: false, text: '剩余 1h 02m 03s left' });
    // A handled case waits for verification: its deadline no longer runs.
    expect(web.countdown(cases[4], now).overdue).toBe(false);
    expect(web.formatDuration(26 * 3600_000 + 5 * 60_000)).toBe('1d 02h 05m');
  });

  it('parses server-sent events split anywhere, skipping comments', () => {
    const got: { type: string; data: string; id: string }[] = [];
    const parser = web.createSseParser((e: { type: string; data: string; id: string }) => got.push(e));
    const stream = ': citysteward events\n\nid: 7\nevent: case.opened\ndata: {"caseId":"C-1"}\n\n: keep-alive\n\r\nid: 8\r\nevent: alarm.raised\r\ndata: a\r\ndata: b\r\n\r\n';
    for (let i = 0; i < stream.length; i += 3) parser.push(stream.slice(i, i + 3));
    expect(got).toEqual([
      { type: 'case.opened', data: '{"caseId":"C-1"}', id: '7' },
      { type: 'alarm.raised', data: 'a\nb', id: '8' },
    ]);
  });

  it('draws a sparkline only from two numbers on, and formats values with units', () => {
    expect(web.sparklinePath([1], 100, 20)).toBeNull();
    expect(web.sparklinePath([0, 1], 100, 20)).toBe('M2.0,18.0 L98.0,2.0');
    expect(web.formatValue(0.91234, 'm')).toBe('0.912 m');
    expect(web.formatValue(true, '')).toBe('是 yes');
    expect(web.formatValue(null, 'm')).toBe('—');
  });
});
