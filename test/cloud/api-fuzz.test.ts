import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import type { RouteAccess } from '../../cloud/http/auth.ts';
import { district, freshDatabase, profiles, reading } from './fixtures.ts';
import { mulberry32 } from '../../devices/scenario.ts';

/**
 * REST fuzz (issue 10, "Done when"): seeded and bounded, every route of the OpenAPI document (read
 * from the running app) for every role, with path parameters, query strings and bodies derived
 * from the schemas and then mutated (wrong types, huge numbers, Infinity, NaN, unicode, __proto__
 * keys, deep nesting, empty and very long strings). No answer may be a 5xx, every error must have
 * the documented `{ statusCode, code, error, message }` body, and no role may get a 2xx its route's
 * config (the one auth enforces: `app.routeAccess`) does not allow, nor a crew another unit's data.
 */

/**
 * Who may call each route, as README states it ("The API" table and its role notes, the roles table
 * of "Cases", "Set up" for the dashboard's files), written out here rather than read from the code:
 * `app.routeAccess` must equal it route by route, so a route whose roles were widened (or narrowed)
 * in the code without the README fails here. A new route needs its row. HEAD mirrors GET.
 */
const ANY = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator', 'inspector'] as const;
/** Every role but the inspector, who registers cases and sees its own (README "Cases from people"). */
const STAFF = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator'] as const;
const PUBLIC = 'public' as const;
const DOCUMENTED_ACCESS: Record<string, typeof PUBLIC | readonly string[]> = {
  'GET /healthz': PUBLIC,
  'GET /metrics': ['admin', 'operator'],
  'POST /api/notifications/outcomes': ['integrator', 'admin'],
  // The web application's page at its own paths and its built files (README "The web application").
  ...Object.fromEntries(['/', '/signin', '/crew', '/crew/*', '/verify', '/verify/*', '/command', '/operator', '/operator/*', '/inspect', '/report', '/ranking', '/assets/*']
    .map((path) => [`GET ${path}`, PUBLIC])),
  'GET /web/points.json': ANY,
  'GET /api/devices': ANY,
  'GET /api/devices/:id': ANY,
  'GET /api/devices/:id/readings': ANY,
  'GET /api/devices/:id/health': ANY,
  'GET /api/devices/:id/thresholds': ANY,
  'GET /api/gateways': ['operator', 'commander', 'admin'],
  // The device registry (README "Device registry"): changes by admins and operators.
  'GET /api/registry/devices': ANY,
  'GET /api/registry/changes': ['admin', 'operator'],
  'GET /api/registry/devices/:id': ANY,
  'GET /api/registry/devices/export': ['operator', 'commander', 'admin'],
  'POST /api/registry/devices': ['admin', 'operator'],
  'PATCH /api/registry/devices/:id': ['admin', 'operator'],
  'POST /api/registry/devices/:id/move': ['admin', 'operator'],
  'POST /api/registry/devices/:id/retire': ['admin', 'operator'],
  'POST /api/registry/devices/import': ['admin', 'operator'],
  'GET /api/registry/gateways': ['operator', 'commander', 'admin'],
  'GET /api/registry/gateways/:id/config': ['operator', 'commander', 'admin'],
  'GET /api/registry/buses': ['operator', 'commander', 'admin'],
  'GET /api/registry/units': ANY,
  'GET /api/registry/districts': ANY,
  ...Object.fromEntries(['gateways/:id', 'buses/:id', 'units/:id', 'districts/:county'].flatMap((p) => [
    [`POST /api/registry/${p.split('/')[0]}`, ['admin', 'operator']], [`PATCH /api/registry/${p}`, ['admin', 'operator']], [`POST /api/registry/${p}/retire`, ['admin', 'operator']],
  ])),
  'GET /api/cases': ANY,
  'POST /api/cases': ['inspector', 'operator', 'integrator', 'admin'],
  'POST /api/photos': ['inspector', 'operator', 'integrator', 'admin'],
  'GET /api/catalogue': ANY,
  'GET /api/cases/:id': ANY,
  'POST /api/cases/:id/dispatch': ['operator', 'commander', 'admin'],
  'POST /api/cases/:id/accept': ['crew', 'commander', 'admin'],
  'POST /api/cases/:id/handle': ['crew', 'admin'],
  'POST /api/cases/:id/verify': ['verifier', 'admin'],
  'POST /api/cases/:id/rework': ['verifier', 'admin'],
  'POST /api/cases/:id/extend': ['commander', 'admin'],
  'POST /api/cases/:id/defer': ['commander', 'admin'],
  'POST /api/cases/:id/void': ['operator', 'commander', 'admin'],
  'POST /api/cases/:id/reopen': ['operator', 'commander', 'verifier', 'admin'],
  'POST /api/cases/:id/note': ANY,
  'POST /api/cases/:id/on-site': ['crew', 'admin'],
  'POST /api/cases/:id/made-safe': ['crew', 'admin'],
  'POST /api/cases/:id/request-extension': ['crew', 'admin'],
  'POST /api/cases/:id/refuse-extension': ['commander', 'admin'],
  'POST /api/cases/:id/photos': ANY,
  'GET /api/photos/:id': ANY,
  'GET /api/alarms': STAFF,
  'POST /api/alarms/:id/ack': ['operator', 'commander', 'admin', 'crew'],
  'GET /api/units': ANY,
  'GET /api/rules': ANY,
  'GET /api/routing': ANY,
  'GET /api/calendar': ANY,
  'GET /api/config': ['admin', 'operator'],
  'GET /api/config/changes': ['admin', 'operator'],
  'GET /api/config/:kind': ['admin', 'operator'],
  'PUT /api/config/:kind': ['admin'],
  'GET /api/events': STAFF,
  'GET /api/emergency': ANY,
  'POST /api/emergency': ['commander', 'admin'],
  'POST /api/warnings': ['commander', 'admin'],
  'GET /api/situation': ['operator', 'commander', 'verifier', 'admin'],
  'GET /api/audit/verify': ['admin'],
  'GET /api/audit/credentials': ['admin'],
  'GET /api/evaluation': ['operator', 'commander', 'verifier', 'admin'],
  'GET /api/evaluation/public': ['admin'],
  'PUT /api/evaluation/public': ['admin'],
  // Public only while an admin has turned it on (404 otherwise): README "The monthly report".
  'GET /api/public/ranking': PUBLIC,
  'GET /api/web/config': ANY,
  'GET /api/citizen-reports': ['operator', 'admin'],
  'POST /api/citizen-reports/:id/accept': ['operator', 'admin'],
  'POST /api/citizen-reports/:id/refuse': ['operator', 'admin'],
  // Open311 GeoReport v2 (README "Open311"): public by the spec; POST requests checks the client app's api_key itself.
  ...Object.fromEntries(['GET /open311/v2/services.json', 'GET /open311/v2/services.xml', 'GET /open311/v2/services/:file',
    'GET /open311/v2/requests.json', 'GET /open311/v2/requests.xml', 'GET /open311/v2/requests/:file',
    'POST /open311/v2/requests.json', 'POST /open311/v2/requests.xml'].map((k) => [k, PUBLIC])),
  'POST /api/session': PUBLIC,
  'GET /api/session': ANY,
  'DELETE /api/session': ANY,
};
/** The OpenAPI docs (`/docs`, `/docs/json`...): public by path (cloud/http/auth.ts), not by route config. */
const isDocs = (route: string) => / \/docs(\/|$)/.test(route);

const SEED = 0x5eed_c17e;
const REQUESTS = 2_100;
const T0 = Date.parse('2026-11-25T02:00:00Z');

/** The simulators' seeded PRNG (mulberry32), so a failure names a request that can be replayed. */
function prng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)], chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

type Schema = Record<string, any>;
interface Operation { method: string; path: string; route: string; params: { name: string; in: string; schema: Schema; required?: boolean }[]; body?: Schema; consumes: string[] }
type Who = { name: string; token?: string; role?: string; unit?: string };

const deep = (n: number): unknown => { let v: unknown = 'x'; for (let i = 0; i < n; i++) v = { a: v }; return v; };
const protoKeys = () => JSON.parse('{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}') as unknown;

/** Values no schema asks for: each kind of hostile input the fuzz mixes in. */
const HOSTILE: (() => unknown)[] = [
  () => Infinity, () => -Infinity, () => NaN, () => 1e309, () => -1, () => 0, () => 2 ** 63, () => 9007199254740993, () => 1.5,
  () => '', () => ' ', () => 'a'.repeat(10_000), () => '𝕏🌀中文'.repeat(200), () => '\u0000\u202e\uFEFF', () => '<script>alert(1)</script>',
  () => "' OR 1=1 --", () => '%ZZ', () => '../../etc/passwd', () => null, () => true, () => [], () => {}, () => [1, 'two', null],
  protoKeys, () => deep(200), () => 'Infinity', () => 'NaN', () => '1e309', () => '9999-12-31T23:59:59Z', () => '2026-02-30T00:00:00Z',
];

const CAP_OK = (id: string) => `<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>${id}</identifier><sender>zhuhai-met</sender><sent>2026-11-25T02:00:00+08:00</sent><status>Exercise</status><msgType>Alert</msgType><scope>Public</scope><info><category>Met</category><event>Typhoon</event><urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty></info></alert>`;
const XML_BODIES: ((rng: Rng) => string)[] = [
  (rng) => CAP_OK(`fuzz-${rng.int(1e9)}`), () => '<a>', () => `${'<a>'.repeat(150)}x${'</a>'.repeat(150)}`, () => '<alert><__proto__>1</__proto__></alert>',
  () => '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><alert>&b;</alert>', () => '', () => '\u0000\u0001',
];

function resolve(doc: Schema, s: Schema | undefined): Schema {
  if (!s) return {};
  if (typeof s.$ref === 'string') return resolve(doc, doc.components?.schemas?.[s.$ref.split('/').pop()!]);
  return s;
}

/** A value the schema accepts (mostly); ids come from the pools of real ones. */
function valid(doc: Schema, s0: Schema, rng: Rng, name: string, pools: Record<string, string[]>, depth = 0): unknown {
  const s = resolve(doc, s0);
  if (s.anyOf) return valid(doc, rng.pick(s.anyOf as Schema[]), rng, name, pools, depth + 1);
  if (s.enum) return rng.pick(s.enum as unknown[]);
  if (pools[name]?.length && rng.chance(0.8)) return rng.pick(pools[name]);
  switch (s.type) {
    case 'integer': {
      const lo = s.minimum ?? 0;
      const hi = s.maximum ?? lo + 1000;
      return lo + rng.int(Math.min(hi - lo + 1, 1_000_000));
    }
    case 'number': return (s.minimum ?? 0) + rng.next() * 100;
    case 'boolean': return rng.chance(0.5);
    case 'array': return depth > 4 ? [] : Array.from({ length: rng.int(3) }, () => valid(doc, s.items ?? {}, rng, name, pools, depth + 1));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, Schema>)) {
        if ((s.required ?? []).includes(k) || rng.chance(0.5)) out[k] = valid(doc, v, rng, k, pools, depth + 1);
      }
      return out;
    }
    case 'string':
      if (s.format === 'date-time') return new Date(T0 + (rng.int(60) - 10) * 86_400_000).toISOString();
      return rng.pick(['x', 'false alarm: sensor fouled', 'on site, cover replaced', 'xz-drainage', 'zh-gas', '440402']);
    default: return rng.pick(['x', 1, true]);
  }
}

/** The schema's value, or one of its fields, replaced by something hostile; sometimes an unknown or __proto__ key. */
function mutate(value: unknown, rng: Rng): unknown {
  if (rng.chance(0.2)) return rng.pick(HOSTILE)();
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const o = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(o);
    if (keys.length && rng.chance(0.6)) o[rng.pick(keys)] = rng.pick(HOSTILE)();
    if (rng.chance(0.2)) o[rng.pick(['zz_unknown', 'constructor', 'toString', '__proto__'])] = rng.pick(HOSTILE)();
    return o;
  }
  return rng.pick(HOSTILE)();
}

/** A query string: the schema's parameters (valid or mutated), sometimes repeated, unknown or prototype keys. */
function queryString(doc: Schema, op: Operation, rng: Rng, pools: Record<string, string[]>): string {
  const parts: string[] = [];
  const enc = (v: unknown) => encodeURIComponent(typeof v === 'object' ? JSON.stringify(v) : String(v));
  for (const p of op.params.filter((x) => x.in === 'query')) {
    if (!p.required && rng.chance(0.5)) continue;
    const v = rng.chance(0.35) ? mutate(valid(doc, p.schema, rng, p.name, pools), rng) : valid(doc, p.schema, rng, p.name, pools);
    parts.push(`${p.name}=${enc(v)}`);
    if (rng.chance(0.05)) parts.push(`${p.name}=${enc(v)}`);
  }
  if (rng.chance(0.1)) parts.push(rng.pick(['__proto__[admin]=1', 'constructor[prototype][admin]=1', 'zz=1', '=', '&&', 'limit', '%ZZ=1', `a=${'b'.repeat(5000)}`]));
  return parts.length ? `?${parts.join('&')}` : '';
}

function pathOf(op: Operation, rng: Rng, pools: Record<string, string[]>): string {
  return op.path.replace(/\{(\w+)\}/g, () => {
    const pool = op.path.startsWith('/api/cases') ? pools.caseId : op.path.startsWith('/api/alarms') ? pools.alarmId : pools.deviceId;
    if (rng.chance(0.75) && pool.length) return encodeURIComponent(rng.pick(pool));
    return rng.pick(['%ZZ', 'x'.repeat(65), 'x'.repeat(2000), encodeURIComponent('𝕏\u0000'), '..', '%2e%2e', 'C-99999999-9999', '__proto__', 'constructor', encodeURIComponent('\'; drop table cases; --')]);
  });
}

function body(doc: Schema, op: Operation, rng: Rng, pools: Record<string, string[]>): { payload?: string; type?: string } {
  if (op.method !== 'POST') return rng.chance(0.05) ? { payload: '{"a":1}', type: 'application/json' } : {};
  if (op.consumes.some((c) => c.includes('xml')) && rng.chance(0.7)) return { payload: rng.pick(XML_BODIES)(rng), type: rng.pick(op.consumes) };
  const r = rng.next();
  if (r < 0.08) return {};
  if (r < 0.14) return { payload: rng.pick(['{', '[]', 'null', '1e309', '"x"', '[' .repeat(5000) + ']'.repeat(5000), '\u0000', '{"a":1}{"b":2}']), type: 'application/json' };
  if (r < 0.18) return { payload: 'reason=x', type: rng.pick(['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/vnd.x+json']) };
  const v = valid(doc, op.body ?? { type: 'object', properties: { reason: { type: 'string' } } }, rng, 'body', pools);
  return { payload: JSON.stringify(rng.chance(0.4) ? mutate(v, rng) : v) ?? 'null', type: 'application/json' };
}

describe('REST fuzz over every route and role', () => {
  let cloud: Cloud;
  let drop: () => Promise<void>;
  let port: number;
  let doc: Schema;
  const who: Who[] = [];
  const pools: Record<string, string[]> = {};
  const unitsOf = new Map(district.devices.map((d) => [d.id, new Set([d.ownerUnit, d.maintainerUnit])]));

  beforeAll(async () => {
    const fresh = await freshDatabase('sqlite');
    drop = fresh.drop;
    let clock = T0;
    cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false });
    await cloud.start();
    for (const [role, unit] of [['admin'], ['operator'], ['commander'], ['verifier'], ['crew', 'xz-drainage'], ['crew', 'zh-gas']] as const) {
      who.push({ name: unit ? `crew:${unit}` : role, token: await cloud.tokens.create(role, unit), role, unit });
    }
    who.push({ name: 'none' });
    // Cases for two units, with alarms: rising water (xz-drainage) and open covers (zh-gas).
    for (let i = 0; i < 6; i++) {
      await cloud.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'XZ-WL-001'), reading('XZ-WL-001', i + 1, T0 + i * 60_000, { level_m: i >= 3 ? 0.95 : 0.1, battery_pct: 90 }));
    }
    await cloud.ingest('gw-xz-gongbei', topics.up('gw-xz-gongbei', 'XZ-MH-001'), reading('XZ-MH-001', 1, T0, { cover_open: true }));
    clock = T0 + 10 * 60_000;
    const admin = { authorization: `Bearer ${who[0].token}` };
    pools.caseId = (await cloud.app.inject({ url: '/api/cases', headers: admin })).json().items.map((c: { id: string }) => c.id);
    pools.alarmId = (await cloud.app.inject({ url: '/api/alarms', headers: admin })).json().items.map((a: { id: string }) => a.id);
    pools.deviceId = district.devices.map((d) => d.id);
    pools.device = pools.deviceId;
    pools.unit = district.units.map((u) => u.id);
    expect(pools.caseId.length).toBeGreaterThanOrEqual(2);
    doc = cloud.app.swagger() as Schema;
    const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    port = Number(new URL(base).port);
  });

  afterAll(async () => {
    await cloud?.stop();
    await drop?.();
  });

  /** The event stream over a real socket (inject would wait for its end): the status, then close. */
  const stream = (url: string, headers: Record<string, string>) => new Promise<{ statusCode: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url, headers }, (res) => {
      if (res.statusCode === 200) { req.destroy(); return resolve({ statusCode: 200, body: '' }); }
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { b += c; });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end();
  });

  it('every route grants exactly the roles README documents: a route widened (or narrowed) in the code alone fails here', () => {
    const documented = (key: string) => DOCUMENTED_ACCESS[key.startsWith('HEAD ') ? `GET ${key.slice(5)}` : key];
    const mismatches: string[] = [];
    for (const [key, a] of cloud.app.routeAccess) {
      if (isDocs(key)) continue;
      const d = documented(key);
      if (d === undefined) { mismatches.push(`${key}: no documented roles (add it to README's API section and to DOCUMENTED_ACCESS)`); continue; }
      const want = d === PUBLIC ? 'public' : [...d].sort().join(',');
      const got = a.public ? 'public' : [...a.roles].sort().join(',');
      if (got !== want) mismatches.push(`${key}: code grants ${got}, README documents ${want}`);
    }
    for (const key of Object.keys(DOCUMENTED_ACCESS)) if (!cloud.app.routeAccess.has(key)) mismatches.push(`${key}: documented but not served`);
    expect(mismatches).toEqual([]);
  });

  it(`answers ${REQUESTS} seeded hostile requests without a 5xx, an undocumented error body or a forbidden 2xx`, async () => {
    const ops: Operation[] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Schema>>)) {
      for (const [method, op] of Object.entries(methods)) {
        const content = (op.requestBody?.content ?? {}) as Record<string, { schema: Schema }>;
        ops.push({
          method: method.toUpperCase(), path, route: path.replace(/\{(\w+)\}/g, ':$1'), params: op.parameters ?? [],
          body: content['application/json']?.schema, consumes: [...Object.keys(content), ...((op.consumes as string[] | undefined) ?? [])],
        });
      }
    }
    // Every route of the document, as the auth sees it (a route without an entry would be a gap in the fuzz).
    const access = new Map<Operation, RouteAccess>();
    for (const op of ops) {
      const a = cloud.app.routeAccess.get(`${op.method} ${op.route}`);
      expect(a, `${op.method} ${op.route} has no route config`).toBeDefined();
      // Judged against README's roles, not only the code's own config (the test above checks they agree).
      const d = DOCUMENTED_ACCESS[`${op.method} ${op.route}`];
      access.set(op, d === undefined ? a! : d === PUBLIC ? { public: true, roles: [] } : { public: false, roles: d as RouteAccess['roles'] });
    }
    expect(ops.length).toBeGreaterThanOrEqual(25);

    const rng = prng(SEED);
    const failures: string[] = [];
    const seen = new Set<string>();
    const statuses = new Map<number, number>();
    const t0 = Date.now();
    for (let i = 0; i < REQUESTS; i++) {
      // Round-robin over routes and roles so each pair gets its share; the rest is random.
      const op = ops[i % ops.length];
      const w = who[Math.floor(i / ops.length) % who.length];
      const url = pathOf(op, rng, pools) + queryString(doc, op, rng, pools);
      const b = body(doc, op, rng, pools);
      const headers: Record<string, string> = {};
      if (w.token) headers.authorization = rng.chance(0.03) ? `Bearer ${w.token}x` : `Bearer ${w.token}`;
      if (b.type) headers['content-type'] = b.type;
      const where = `#${i} ${w.name} ${op.method} ${url.slice(0, 200)} body=${(b.payload ?? '').slice(0, 200)}`;
      let res: { statusCode: number; body: string };
      if (op.path === '/api/events') res = await stream(url, headers);
      else res = await cloud.app.inject({ method: op.method as 'GET', url, headers, payload: b.payload });
      seen.add(`${op.method} ${op.path} ${w.name}`);
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);

      if (res.statusCode >= 500) failures.push(`${res.statusCode} ${res.body.slice(0, 300)} <- ${where}`);
      if (res.statusCode >= 400 && op.path.startsWith('/open311/')) {
        // The spec's errors: [{ code, description }] (JSON) or <errors><error>... (XML), code = the HTTP status.
        const xmlErr = new RegExp(`^<\\?xml version="1.0" encoding="utf-8"\\?>\\s*<errors>\\s*<error>\\s*<code>${res.statusCode}</code>`);
        let ok = xmlErr.test(res.body);
        try { const e = JSON.parse(res.body); ok ||= Array.isArray(e) && e.length > 0 && e.every((x) => x.code === res.statusCode && typeof x.description === 'string'); } catch { /* XML */ }
        if (!ok) failures.push(`not the Open311 error format ${res.statusCode} ${res.body.slice(0, 300)} <- ${where}`);
      } else if (res.statusCode >= 400) {
        let e: Record<string, unknown> = {};
        try { e = JSON.parse(res.body); } catch { /* checked below */ }
        const shaped = e.statusCode === res.statusCode && typeof e.code === 'string' && /^CS_/.test(e.code) && typeof e.error === 'string' && typeof e.message === 'string';
        if (!shaped || Object.keys(e).sort().join() !== 'code,error,message,statusCode') failures.push(`undocumented error body ${res.statusCode} ${res.body.slice(0, 300)} <- ${where}`);
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        const a = access.get(op)!;
        if (!a.public && (!w.role || !a.roles.includes(w.role as never))) failures.push(`forbidden ${res.statusCode} <- ${where}`);
        if (w.role === 'crew' && op.path.startsWith('/api/') && op.path !== '/api/events' && res.statusCode !== 204) {
          const j = JSON.parse(res.body) as Record<string, any>;
          if (op.path.startsWith('/api/cases')) {
            for (const c of (j.items ?? [j]) as { unit: string }[]) if (c.unit !== w.unit) failures.push(`crew sees another unit's case ${JSON.stringify(c.unit)} <- ${where}`);
          }
          if (op.path.startsWith('/api/alarms')) {
            for (const al of (j.items ?? [j]) as { device: string }[]) if (!unitsOf.get(al.device)?.has(w.unit!)) failures.push(`crew sees another unit's alarm on ${al.device} <- ${where}`);
          }
        }
      }
    }
    const ms = Date.now() - t0;
    console.info(`REST fuzz: ${REQUESTS} requests over ${ops.length} routes x ${who.length} roles in ${ms} ms; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((x, y) => x[0] - y[0])))}`);
    expect(failures.slice(0, 20)).toEqual([]);
    // Every route was called by every role.
    for (const op of ops) for (const w of who) expect(seen.has(`${op.method} ${op.path} ${w.name}`), `${op.method} ${op.path} as ${w.name}`).toBe(true);
    // Still serving.
    expect((await cloud.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  }, 120_000);
});
