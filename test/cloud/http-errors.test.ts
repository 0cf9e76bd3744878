import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { checkHttpLimits, defaultHttpLimits } from '../../lib/http-limits.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';

/**
 * Every 4xx and 5xx in the documented `{ statusCode, code, error, message }` shape with a CS_* code,
 * Fastify's and Node's own errors included; numeric query parameters bounded (issue 10, findings 7, 10);
 * half-sent requests closed after the header timeout and event streams capped per token (finding 3).
 */

const SHAPE = { statusCode: expect.any(Number), code: expect.stringMatching(/^CS_/), error: expect.any(String), message: expect.any(String) };

/** Writes raw bytes on a fresh socket; resolves with everything the server sent until it closed, and when. */
function raw(port: number, data: string, opts: { keepOpen?: boolean } = {}): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s: Socket = connect(port, '127.0.0.1');
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => { text += c; });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ text, closedAfterMs: Date.now() - t0 }));
    s.on('connect', () => (opts.keepOpen ? s.write(data) : s.write(data)));
    setTimeout(() => { s.destroy(); reject(new Error('server did not close the socket within 15 s')); }, 15_000).unref();
  });
}

function bodyOf(text: string): unknown {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

describe('HTTP error bodies and limits', () => {
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let port: number;
  let admin: string;
  const auth = () => ({ authorization: `Bearer ${admin}` });

  beforeAll(async () => {
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    // Short timeouts so the test sees them act; the defaults are checked below.
    cloud = await buildCloud({
      db: fresh.db, district, profiles, escalation: false,
      http: { headersTimeoutMs: 800, requestTimeoutMs: 1_500, keepAliveTimeoutMs: 800, maxEventStreamsPerToken: 2 },
    });
    await cloud.start();
    admin = await cloud.tokens.create('admin');
    const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    port = Number(new URL(base).port);
  });

  afterAll(async () => {
    await cloud?.stop();
    await drop?.();
  });

  it.each([
    '/api/cases?limit=Infinity', '/api/cases?limit=1e309', '/api/cases?limit=-Infinity',
    '/api/alarms?limit=Infinity', '/api/alarms?limit=1e309',
    '/api/devices/XZ-WL-001/readings?limit=Infinity', '/api/devices/XZ-WL-001/readings?limit=1e309',
  ])('a limit of Infinity answers 400 naming the parameter, not 500 (SQLITE_MISMATCH): %s', async (url) => {
    const r = await cloud.app.inject({ method: 'GET', url, headers: auth() });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ statusCode: 400, code: 'CS_CLOUD_VALIDATION', error: 'Bad Request', message: expect.stringContaining('"limit"') });
  });

  it('a limit past the schema bound answers 400 with CS_CLOUD_VALIDATION', async () => {
    for (const url of ['/api/cases?limit=100000', '/api/alarms?limit=0', '/api/devices/XZ-WL-001/readings?limit=NaN']) {
      const r = await cloud.app.inject({ method: 'GET', url, headers: auth() });
      expect(r.statusCode, url).toBe(400);
      expect(r.json().code, url).toBe('CS_CLOUD_VALIDATION');
    }
  });

  it('a path with bad URL encoding (%ZZ) answers CS_CLOUD_BAD_URL, not Fastify\'s FST_ERR_BAD_URL body', async () => {
    for (const url of ['/api/cases/%ZZ', '/api/%ZZ', '/api/devices/%E0%A4%A/readings']) {
      const r = await cloud.app.inject({ method: 'GET', url, headers: auth() });
      expect(r.statusCode, url).toBe(400);
      expect(r.json(), url).toEqual({ statusCode: 400, code: 'CS_CLOUD_BAD_URL', error: 'Bad Request', message: 'the path is not valid URL encoding' });
    }
  });

  it('a body that does not match its Content-Length answers CS_CLOUD_BAD_CONTENT_LENGTH', async () => {
    const r = await cloud.app.inject({
      method: 'POST', url: '/api/cases/C-1/void', payload: '{"reason":"false alarm"}',
      headers: { ...auth(), 'content-type': 'application/json', 'content-length': '5' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ ...SHAPE, code: 'CS_CLOUD_BAD_CONTENT_LENGTH' });
  });

  it('a wrong Content-Length on the wire (not a number, or shorter than the body) answers a CS_* body, not Fastify\'s', async () => {
    const bad = await raw(port, `POST /api/cases/C-1/void HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`);
    expect(bad.text).toMatch(/^HTTP\/1.1 400 /);
    expect(bodyOf(bad.text)).toEqual({ statusCode: 400, code: 'CS_CLOUD_BAD_REQUEST', error: 'Bad Request', message: expect.stringContaining('HPE_') });
    // A shorter Content-Length leaves the rest of the body as the next "request", which does not parse.
    const short = await raw(port, `POST /api/cases/C-1/void HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\u0001garbage\r\n\r\n`);
    const last = short.text.slice(short.text.lastIndexOf('HTTP/1.1 '));
    expect(last).toMatch(/^HTTP\/1.1 400 /);
    expect(bodyOf(last)).toMatchObject({ ...SHAPE, code: 'CS_CLOUD_BAD_REQUEST' });
  });

  it('headers over Node\'s size limit answer 431 CS_CLOUD_HEADERS_TOO_LARGE', async () => {
    const r = await raw(port, `GET /api/cases HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(r.text).toMatch(/^HTTP\/1.1 431 /);
    expect(bodyOf(r.text)).toEqual({ statusCode: 431, code: 'CS_CLOUD_HEADERS_TOO_LARGE', error: 'Request Header Fields Too Large', message: expect.any(String) });
  });

  it('bad JSON, an empty JSON body and a __proto__ key answer CS_CLOUD_BAD_JSON', async () => {
    for (const payload of ['{bad', '', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}']) {
      const r = await cloud.app.inject({ method: 'POST', url: '/api/cases/C-1/void', payload, headers: { ...auth(), 'content-type': 'application/json' } });
      expect(r.statusCode, payload).toBe(400);
      expect(r.json(), payload).toMatchObject({ ...SHAPE, statusCode: 400, code: 'CS_CLOUD_BAD_JSON' });
    }
  });

  it('an unsupported media type answers 415 CS_CLOUD_UNSUPPORTED_MEDIA_TYPE', async () => {
    const r = await cloud.app.inject({ method: 'POST', url: '/api/cases/C-1/void', payload: 'x=1', headers: { ...auth(), 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.statusCode).toBe(415);
    expect(r.json()).toEqual({ statusCode: 415, code: 'CS_CLOUD_UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message: expect.stringContaining('application/json') });
  });

  it('a body over the limit answers 413 CS_CLOUD_BODY_TOO_LARGE', async () => {
    const r = await cloud.app.inject({ method: 'POST', url: '/api/cases/C-1/void', payload: JSON.stringify({ reason: 'x'.repeat(300_000) }), headers: { ...auth(), 'content-type': 'application/json' } });
    expect(r.statusCode).toBe(413);
    expect(r.json()).toMatchObject({ ...SHAPE, statusCode: 413, code: 'CS_CLOUD_BODY_TOO_LARGE', error: 'Payload Too Large' });
  });

  it('an unknown route and an unknown method answer 404 CS_CLOUD_ROUTE_NOT_FOUND', async () => {
    for (const [method, url] of [['GET', '/api/nothing'], ['DELETE', '/api/cases'], ['PATCH', '/nothing/at/all']] as const) {
      const r = await cloud.app.inject({ method, url, headers: auth() });
      expect(r.statusCode).toBe(404);
      expect(r.json()).toEqual({ statusCode: 404, code: 'CS_CLOUD_ROUTE_NOT_FOUND', error: 'Not Found', message: `no route ${method} ${url}` });
    }
  });

  it('defaults to header and idle timeouts of seconds, a request time that lets a 10 MB photo arrive over a 1 Mbit/s link, and caps of its own', () => {
    const d = defaultHttpLimits(1024);
    expect(d.headersTimeoutMs).toBeLessThanOrEqual(10_000);
    expect(d.idleTimeoutMs).toBeLessThanOrEqual(60_000);
    expect(d.requestTimeoutMs).toBeGreaterThanOrEqual((10 * 1024 * 1024 * 8) / 1_000_000 * 1000);
    expect(d.requestTimeoutMs).toBeLessThanOrEqual(180_000);
    expect(d.keepAliveTimeoutMs).toBeLessThanOrEqual(10_000);
    expect(d.maxConnections).toBeLessThan(1024);
    expect(d.maxConnectionsPerAddress).toBeGreaterThan(0);
    expect(d.maxEventStreamsPerToken).toBeGreaterThan(0);
  });

  it('refuses limits Node would refuse or that would cut the event stream, naming them', () => {
    expect(() => checkHttpLimits({ ...defaultHttpLimits(), headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 })).toThrow(/headersTimeoutMs \(20000\) must not exceed requestTimeoutMs/);
    expect(() => checkHttpLimits({ ...defaultHttpLimits(), idleTimeoutMs: 10_000 })).toThrow(/heartbeat/);
    expect(() => checkHttpLimits({ ...defaultHttpLimits(), maxConnections: Infinity })).toThrow(/maxConnections must be a whole number/);
  });

  it('a half-sent request is closed after the header timeout (408 CS_CLOUD_REQUEST_TIMEOUT), not held for a minute', async () => {
    const r = await raw(port, 'GET /api/cases HTTP/1.1\r\nHost: x\r\n');
    expect(r.closedAfterMs).toBeLessThan(800 + 1_000 + 1_000); // timeout + Node's check interval (1 s) + slack
    expect(r.text).toMatch(/^HTTP\/1.1 408 /);
    expect(bodyOf(r.text)).toEqual({ statusCode: 408, code: 'CS_CLOUD_REQUEST_TIMEOUT', error: 'Request Timeout', message: expect.any(String) });
  });

  it('a connection that sends nothing is closed after the header timeout', async () => {
    const r = await raw(port, '');
    expect(r.closedAfterMs).toBeLessThan(800 + 1_000 + 1_000);
  });

  it('a half-sent body is closed after the request timeout', async () => {
    const r = await raw(port, `POST /api/cases/C-1/void HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"rea`);
    expect(r.closedAfterMs).toBeLessThan(1_500 + 1_000 + 1_000);
  });

  it('a live event stream outlives the header, request and keep-alive timeouts', async () => {
    const closed = await new Promise<boolean>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/events', headers: { authorization: `Bearer ${admin}` } }, (res) => {
        expect(res.statusCode).toBe(200);
        let gone = false;
        res.on('close', () => { gone = true; });
        res.resume();
        setTimeout(() => { req.destroy(); resolve(gone); }, 1_500 + 1_000 + 1_500);
      });
      req.on('error', reject);
      req.end();
    });
    expect(closed).toBe(false);
  });

  it('caps live event streams per token: one more answers 429 CS_CLOUD_TOO_MANY_STREAMS, a closed one frees its place', async () => {
    const open = (token: string) => new Promise<{ res: IncomingMessage; close(): void; body(): Promise<string> }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/events', headers: { authorization: `Bearer ${token}` } }, (res) => resolve({
        res,
        close: () => req.destroy(),
        body: () => new Promise((r) => { let b = ''; res.setEncoding('utf8'); res.on('data', (c: string) => { b += c; }); res.on('end', () => r(b)); }),
      }));
      req.on('error', reject);
      req.end();
    });
    const a = await open(admin);
    const b = await open(admin);
    expect([a.res.statusCode, b.res.statusCode]).toEqual([200, 200]);
    const c = await open(admin);
    expect(c.res.statusCode).toBe(429);
    expect(JSON.parse(await c.body())).toEqual({ statusCode: 429, code: 'CS_CLOUD_TOO_MANY_STREAMS', error: 'Too Many Requests', message: expect.any(String) });
    const other = await open(await cloud.tokens.create('operator'));
    expect(other.res.statusCode).toBe(200);
    a.close();
    let d: Awaited<ReturnType<typeof open>> | undefined;
    for (let i = 0; i < 100 && d?.res.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      d = await open(admin);
      if (d.res.statusCode !== 200) d.close();
    }
    expect(d?.res.statusCode).toBe(200);
    for (const s of [b, other, d!]) s.close();
  });
});
