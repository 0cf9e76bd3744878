import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { topics } from '../../lib/topics.ts';
import { createLogger } from '../../lib/log.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { buildCloud, type Cloud, type DbOptions } from '../../cloud/app.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/** Sign-in (POST/GET/DELETE /api/session), the cookie on every route, CSRF, throttling and rate limits. */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const PASSWORDS = { alice: 'alice-correct-horse-1', drain: 'drain-battery-staple-2', gas: 'gas-tr0ub4dor-3' };

function payload(device: string, seq: number, tsMs: number, values: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ seq, ts: new Date(tsMs).toISOString(), device, values }));
}

describe.each(BACKENDS)('sign-in on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let dbOpts: DbOptions;
    let drop: () => Promise<void>;
    let cloud: Cloud;
    let base: string;
    let clock = T0;
    let limiterClock = 0;
    const logLines: string[] = [];

    const call = (method: string, path: string, o: { cookie?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) => fetch(`${base}${path}`, {
      method,
      headers: {
        ...(o.cookie ? { cookie: o.cookie } : {}),
        ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...o.headers,
      },
      body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
    });
    const signIn = (username: string, password: string, headers: Record<string, string> = {}) => call('POST', '/api/session', { body: { username, password }, headers });
    /** `cs_session=VALUE` from a response's Set-Cookie. */
    const cookieOf = (res: Response) => /^(cs_session=[^;]*)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? '';

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      dbOpts = fresh.db;
      drop = fresh.drop;
      const logger = createLogger({ level: 'debug' }, 'json', { write: (s: string) => { logLines.push(s); } });
      cloud = await buildCloud({
        db: dbOpts, district, profiles, now: () => clock, clock: () => limiterClock, escalation: false, logger,
        readings: { maxSkewMs: 10 * 60_000 },
      });
      await cloud.start();
      await cloud.users.create('alice', 'operator', undefined, PASSWORDS.alice);
      await cloud.users.create('crew-xz-drainage', 'crew', 'xz-drainage', PASSWORDS.drain);
      await cloud.users.create('crew-zh-gas', 'crew', 'zh-gas', PASSWORDS.gas);
      // A water-level case for xz-drainage and an open-cover case for zh-gas.
      for (let i = 0; i < 10; i++) {
        await cloud.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), payload('XZ-WL-001', i + 1, T0 + i * 60_000, { level_m: i >= 7 ? 0.9 : 0.1, battery_pct: 90 }));
      }
      await cloud.ingest('gw-xz-gongbei', topics.up('gw-xz-gongbei', 'XZ-MH-001'), payload('XZ-MH-001', 1, T0, { cover_open: true }));
      clock = T0 + 10 * 60_000;
      base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    it('signs in with a user name and password: 200 with the user and an HttpOnly, SameSite=Strict, Path=/ cookie (not Secure over plain HTTP)', async () => {
      const res = await signIn('alice', PASSWORDS.alice);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ user: { username: 'alice', role: 'operator', unit: null } });
      const set = res.headers.get('set-cookie')!;
      expect(set).toMatch(/^cs_session=[A-Za-z0-9_-]{43};/);
      expect(set).toMatch(/HttpOnly/);
      expect(set).toMatch(/SameSite=Strict/);
      expect(set).toMatch(/Path=\//);
      expect(set).not.toMatch(/Secure/);
      const cookie = cookieOf(res);
      const who = await call('GET', '/api/session', { cookie });
      expect(await who.json()).toEqual({ user: { username: 'alice', role: 'operator', unit: null } });
      expect((await call('GET', '/api/devices', { cookie })).status).toBe(200);
    });

    it('signs out: DELETE answers 204, clears the cookie, and the old cookie no longer works', async () => {
      const cookie = cookieOf(await signIn('alice', PASSWORDS.alice));
      const out = await call('DELETE', '/api/session', { cookie, headers: { origin: base } });
      expect(out.status).toBe(204);
      expect(out.headers.get('set-cookie')).toMatch(/^cs_session=;.*Expires=Thu, 01 Jan 1970/);
      const after = await call('GET', '/api/session', { cookie });
      expect(after.status).toBe(401);
      expect(((await after.json()) as { code: string }).code).toBe('CS_CLOUD_AUTH_INVALID');
      expect((await call('GET', '/api/session')).status).toBe(401);
    });

    it('ends a session after 12 hours without a request, and after 7 days however busy', async () => {
      const idle = cookieOf(await signIn('alice', PASSWORDS.alice));
      const busy = cookieOf(await signIn('alice', PASSWORDS.alice));
      const start = clock;
      try {
        clock = start + 11 * 3_600_000;
        expect((await call('GET', '/api/session', { cookie: busy })).status).toBe(200);
        clock = start + 12 * 3_600_000 + 1;
        expect((await call('GET', '/api/session', { cookie: idle })).status).toBe(401);
        for (let h = 22; h < 7 * 24; h += 11) {
          clock = start + h * 3_600_000;
          expect((await call('GET', '/api/session', { cookie: busy })).status, `after ${h} h`).toBe(200);
        }
        clock = start + 7 * 86_400_000;
        expect((await call('GET', '/api/session', { cookie: busy })).status).toBe(401);
      } finally {
        clock = start;
      }
    });

    it('answers a wrong password exactly as an unknown user: 401 CS_CLOUD_SIGNIN_FAILED, no cookie', async () => {
      const wrong = await signIn('crew-zh-gas', 'not-the-password');
      const unknown = await signIn('nobody-at-all', 'not-the-password');
      // A password typed into the name field is not logged either.
      expect((await signIn(PASSWORDS.gas.toUpperCase(), 'x')).status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      expect(await wrong.json()).toEqual(await unknown.json());
    });

    it('slows an account down after five wrong passwords (429 with Retry-After, the right password too); after the lock the right password works', async () => {
      for (let i = 0; i < 5; i++) expect((await signIn('crew-xz-drainage', `wrong-${i}-password`)).status).toBe(401);
      const locked = await signIn('crew-xz-drainage', PASSWORDS.drain);
      expect(locked.status).toBe(429);
      expect(((await locked.json()) as { code: string }).code).toBe('CS_CLOUD_SIGNIN_THROTTLED');
      const retry = Number(locked.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(1);
      limiterClock += retry * 1000;
      expect((await signIn('crew-xz-drainage', PASSWORDS.drain)).status).toBe(200);
    });

    it('a crew session sees only its unit\'s cases: another unit\'s case answers 404', async () => {
      const cookie = cookieOf(await signIn('crew-zh-gas', PASSWORDS.gas));
      const list = await (await call('GET', '/api/cases', { cookie })).json() as { items: { id: string; unit: string }[] };
      expect(list.items.length).toBeGreaterThan(0);
      expect(new Set(list.items.map((c) => c.unit))).toEqual(new Set(['zh-gas']));
      const all = await (await call('GET', '/api/cases', { cookie: cookieOf(await signIn('alice', PASSWORDS.alice)) })).json() as { items: { id: string; unit: string }[] };
      const other = all.items.find((c) => c.unit !== 'zh-gas')!;
      expect(other).toBeDefined();
      const res = await call('GET', `/api/cases/${other.id}`, { cookie });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('CS_CLOUD_CASE_NOT_FOUND');
    });

    it('refuses a cross-origin cookie POST (403 CS_CLOUD_CSRF) and one without Origin; accepts the same origin', async () => {
      const cookie = cookieOf(await signIn('alice', PASSWORDS.alice));
      const id = ((await (await call('GET', '/api/cases', { cookie })).json()) as { items: { id: string }[] }).items[0].id;
      const body = { reason: 'false alarm: sensor fouled' };
      const evil = await call('POST', `/api/cases/${id}/void`, { cookie, body, headers: { origin: 'https://evil.example' } });
      expect(evil.status).toBe(403);
      expect(((await evil.json()) as { code: string }).code).toBe('CS_CLOUD_CSRF');
      expect((await call('POST', `/api/cases/${id}/void`, { cookie, body, headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
      expect((await call('POST', `/api/cases/${id}/void`, { cookie, body })).status).toBe(403);
      // Same origin: past auth and CSRF (the workflow answers; operator may void).
      const same = await call('POST', `/api/cases/${id}/void`, { cookie, body, headers: { origin: base } });
      expect([200, 409]).toContain(same.status);
      // A cross-site sign-in form is refused too (login CSRF).
      expect((await signIn('alice', PASSWORDS.alice, { origin: 'https://evil.example' })).status).toBe(403);
    });

    it('the live event stream works with the cookie (EventSource sends it)', async () => {
      const cookie = cookieOf(await signIn('alice', PASSWORDS.alice));
      const u = new URL(`${base}/api/events`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: { cookie } }, (res) => { resolve(res.statusCode ?? 0); req.destroy(); });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
    });

    it('history names the signed-in person: a case action by a session is recorded as user:NAME', async () => {
      const cookie = cookieOf(await signIn('alice', PASSWORDS.alice));
      const r = await call('POST', '/api/emergency', { cookie, body: { mode: 'normal', reason: 'drill over' }, headers: { origin: base } });
      expect(r.status).toBe(403); // operator may not switch the mode: the role check still applies to sessions
      await cloud.users.create('cmdr', 'commander', undefined, 'commander-pass-123');
      const c = cookieOf(await signIn('cmdr', 'commander-pass-123'));
      expect((await call('POST', '/api/emergency', { cookie: c, body: { mode: 'emergency', level: 'IV', reason: 'drill' }, headers: { origin: base } })).status).toBe(200);
      const state = await (await call('GET', '/api/emergency', { cookie: c })).json() as { actor: string };
      expect(state.actor).toBe('user:cmdr');
    });

    it('stores a scrypt hash with its parameters, never the password', async () => {
      const database = openDatabase(dbOpts);
      try {
        const row = await database.db.selectFrom('users').select(['password_hash']).where('username', '=', 'alice').executeTakeFirstOrThrow();
        expect(row.password_hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
        expect(row.password_hash).not.toContain(PASSWORDS.alice);
        const sessions = await database.db.selectFrom('sessions').select(['id_hash']).execute();
        expect(sessions.every((s) => /^[0-9a-f]{64}$/.test(s.id_hash))).toBe(true);
      } finally {
        await database.close();
      }
    });

    it('logs sign-ins without passwords or session cookies', () => {
      const text = logLines.join('');
      expect(text).toMatch(/sign-in failed/);
      expect(text).toMatch(/signed in/);
      for (const p of Object.values(PASSWORDS)) expect(text.toLowerCase()).not.toContain(p.toLowerCase());
      expect(text).not.toMatch(/cs_session=[A-Za-z0-9_-]{43}/);
    });
  });
});

describe('behind a reverse proxy (trustProxy)', () => {
  it('sets Secure on the cookie when the proxy says the browser used HTTPS, and counts failures per forwarded client', async () => {
    const fresh = await freshDatabase('sqlite');
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, trustProxy: '127.0.0.1', signIn: { freeFailuresPerAddress: 1 } });
    try {
      await cloud.start();
      await cloud.users.create('proxied', 'operator', undefined, 'proxied-password-1');
      const post = (username: string, password: string, client: string) => cloud.app.inject({
        method: 'POST', url: '/api/session', payload: { username, password },
        headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': client }, remoteAddress: '127.0.0.1',
      });
      const ok = await post('proxied', 'proxied-password-1', '203.0.113.7');
      expect(ok.statusCode).toBe(200);
      expect(ok.headers['set-cookie']).toMatch(/; Secure/);
      // Two failures lock one forwarded client's address, not the proxy's: another client still signs in.
      await post('nobody', 'wrong-password-x', '203.0.113.66');
      await post('nobody', 'wrong-password-x', '203.0.113.66');
      expect((await post('proxied', 'proxied-password-1', '203.0.113.66')).statusCode).toBe(429);
      expect((await post('proxied', 'proxied-password-1', '198.51.100.9')).statusCode).toBe(200);
    } finally {
      await cloud.stop();
      await fresh.drop();
    }
  });
});

describe('per-credential rate limit', () => {
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let limiterClock = 0;

  beforeAll(async () => {
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    cloud = await buildCloud({ db: fresh.db, district, profiles, clock: () => limiterClock, escalation: false, http: { requestsPerSecond: 2, requestBurst: 3 } });
    await cloud.start();
  });
  afterAll(async () => {
    await cloud?.stop();
    await drop?.();
  });

  it('answers 429 CS_CLOUD_RATE_LIMITED with Retry-After past the burst, per token; /healthz is not counted; the bucket refills', async () => {
    const a = await cloud.tokens.create('operator');
    const b = await cloud.tokens.create('operator');
    const get = (token: string, url = '/api/units') => cloud.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 3; i++) expect((await get(a)).statusCode).toBe(200);
    const over = await get(a);
    expect(over.statusCode).toBe(429);
    expect(over.json().code).toBe('CS_CLOUD_RATE_LIMITED');
    expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another credential has its own bucket; health checks are never limited.
    expect((await get(b)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await cloud.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    limiterClock += 1000;
    expect((await get(a)).statusCode).toBe(200);
    expect((await get(a)).statusCode).toBe(200);
    expect((await get(a)).statusCode).toBe(429);
  });

  it('does not count the live event stream: a limited credential still opens one', async () => {
    const token = await cloud.tokens.create('operator');
    for (let i = 0; i < 3; i++) await cloud.app.inject({ url: '/api/units', headers: { authorization: `Bearer ${token}` } });
    expect((await cloud.app.inject({ url: '/api/units', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(429);
    const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    const u = new URL(`${base}/api/events`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${token}` } }, (res) => { resolve(res.statusCode ?? 0); req.destroy(); });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });
});
