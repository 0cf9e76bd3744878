import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { DEMO_DISTRICT } from '../../cli/demo.ts';

/**
 * The web application as the cloud serves it (cloud/web/plugin.ts): the page at its own paths with a
 * self-only policy, hashed files cached for good, data behind sign-in, and /api never answered by the page.
 * A small stand-in build in a temp directory keeps this test independent of `npm run build:web`.
 */

const profiles = loadProfiles();
const district = loadDistrict(DEMO_DISTRICT, profiles);

function fakeBuild(dir: string): void {
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><html><script type="module" src="/assets/index-abc123.js"></script><div id="app"></div></html>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log("app")');
  writeFileSync(join(dir, 'assets', 'index-abc123.css'), 'body{}');
}

describe('the web application served by the cloud', () => {
  let dir: string;
  let cloud: Cloud;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-web-'));
    fakeBuild(join(dir, 'dist'));
    cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, escalation: false, webDir: join(dir, 'dist') });
    await cloud.start();
    token = await cloud.tokens.create('operator');
  });

  afterAll(async () => {
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (url: string, headers: Record<string, string> = {}) => cloud.app.inject({ method: 'GET', url, headers });

  it('serves the page at / and at every client route, without a session, with a self-only content security policy', async () => {
    for (const url of ['/', '/signin', '/crew', '/crew/cases/CASE-1', '/verify/cases/x', '/command', '/operator/devices/XZ-WL-001', '/operator/alarms']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).not.toMatch(/https?:|unsafe-inline|unsafe-eval/);
      expect(res.body).toContain('<div id="app">');
    }
  });

  it('answers 304 to a page revalidation with the same etag', async () => {
    const first = await get('/');
    const again = await get('/crew', { 'if-none-match': String(first.headers.etag) });
    expect(again.statusCode).toBe(304);
  });

  it('serves the hashed build files as immutable, with their types, and 404s an unknown one', async () => {
    const js = await get('/assets/index-abc123.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/assets/index-abc123.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await get('/assets/nope.js')).statusCode).toBe(404);
    expect((await get('/assets/../index.html')).statusCode).not.toBe(200);
  });

  it('never answers an unknown /api path with the page: it needs a credential and then 404s', async () => {
    expect((await get('/api/nothing-here')).statusCode).toBe(401);
    const res = await get('/api/nothing-here', { authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toContain('application/json');
  });

  it('keeps the point catalogue behind a credential', async () => {
    expect((await get('/web/points.json')).statusCode).toBe(401);
    const res = await get('/web/points.json', { authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().profiles['water-level'].points.some((p: { key: string }) => p.key === 'level_m')).toBe(true);
  });

  it('says how to build the application when it has not been built, rather than failing to start', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'cs-web-empty-'));
    const bare = await buildCloud({ db: { kind: 'sqlite', file: join(empty, 'cs.db') }, district, profiles, escalation: false, webDir: join(empty, 'dist') });
    try {
      await bare.start();
      const res = await bare.app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('npm run build:web');
    } finally {
      await bare.stop();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
