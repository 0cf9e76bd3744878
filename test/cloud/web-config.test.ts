import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { checkWebOptions, tileOrigins, type MapTiles, type WebConfigReply } from '../../cloud/web/config-route.ts';
import { CloudServiceConfig } from '../../cli/config.ts';
import { ConfigError, parseConfig } from '../../lib/config.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';

/** GET /api/web/config (docs/map-data.md): the city's zone, the map's start view and the optional `web.map.tiles`. */

const TIANDITU_XYZ: MapTiles = {
  kind: 'xyz', url: 'https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=BROWSERKEY',
  attribution: '天地图 GS(2024)0568号', subdomains: ['0', '1', '2', '3', '4', '5', '6', '7'], maxZoom: 18,
};

let open: { cloud: Cloud; drop(): Promise<void> } | undefined;
afterEach(async () => {
  await open?.cloud.stop();
  await open?.drop();
  open = undefined;
});

/** A cloud on loopback with the demo district and an SQLite file in a temp dir; GET as `role`. */
async function serve(web?: Parameters<typeof buildCloud>[0]['web']) {
  const fresh = await freshDatabase('sqlite');
  const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false, web });
  open = { cloud, drop: fresh.drop };
  await cloud.start();
  const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
  const get = async (token?: string) => {
    const r = await fetch(`${base}/api/web/config`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.status, json: async () => (await r.json()) as WebConfigReply };
  };
  return { cloud, get, base };
}

describe('GET /api/web/config', () => {
  it('answers every signed-in role with the city zone, no tiles by default, and a view of the devices', async () => {
    const { cloud, get } = await serve();
    expect((await get()).status).toBe(401);
    for (const [role, unit] of [['operator'], ['crew', 'xz-drainage'], ['verifier'], ['commander'], ['admin']] as const) {
      const r = await get(await cloud.tokens.create(role, unit));
      expect(r.status, role).toBe(200);
      const body = await r.json();
      expect(body.timeZone).toBe('Asia/Shanghai');
      expect(body.map.tiles).toBeNull();
      const [[s, w], [n, e]] = body.map.bounds;
      for (const d of district.devices) {
        expect(d.lat).toBeGreaterThanOrEqual(s);
        expect(d.lat).toBeLessThanOrEqual(n);
        expect(d.lon).toBeGreaterThanOrEqual(w);
        expect(d.lon).toBeLessThanOrEqual(e);
      }
      expect(body.map.center).toEqual([(s + n) / 2, (w + e) / 2]);
      // The demo's 30 devices span ~4 km: a street-level zoom, not the whole city or a single block.
      expect(body.map.zoom).toBeGreaterThanOrEqual(12);
      expect(body.map.zoom).toBeLessThanOrEqual(16);
    }
  });

  it("answers the configured XYZ tile source as given, and the page's CSP lets its images in (and nothing else)", async () => {
    const { cloud, get, base } = await serve({ map: { tiles: TIANDITU_XYZ } });
    const body = await (await get(await cloud.tokens.create('operator'))).json();
    expect(body.map.tiles).toEqual(TIANDITU_XYZ);
    const csp = (await fetch(`${base}/operator`)).headers.get('content-security-policy') ?? '';
    const img = csp.split('; ').find((d) => d.startsWith('img-src'));
    expect(img).toBe(`img-src 'self' data: blob: ${[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `https://t${i}.tianditu.gov.cn`).join(' ')}`);
    expect(csp).toContain("connect-src 'self';");
  });

  it("keeps the page's CSP self-only without tiles", async () => {
    const { base } = await serve();
    const csp = (await fetch(`${base}/operator`)).headers.get('content-security-policy') ?? '';
    expect(csp.split('; ').find((d) => d.startsWith('img-src'))).toBe("img-src 'self' data: blob:");
  });

  it('answers a WMTS source (Tianditu KVP endpoint with layer and matrix set)', async () => {
    const tiles: MapTiles = { kind: 'wmts', url: 'https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=KEY', subdomains: '01234567', layer: 'vec', tileMatrixSet: 'w' };
    const { cloud, get } = await serve({ map: { tiles } });
    expect((await (await get(await cloud.tokens.create('crew', 'zh-gas'))).json()).map.tiles).toEqual(tiles);
  });
});

describe('web.map.tiles in the cloud config', () => {
  const yaml = (tiles: string) => `district: d.yaml\nmqtt: { url: 'mqtt://127.0.0.1', username: u, password: p }\nweb:\n  map:\n    tiles: ${tiles}\n`;
  const problemsOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CS_CONFIG_INVALID');
      return (err as ConfigError).problems.map((p) => p.key);
    }
    throw new Error('not refused');
  };

  it('accepts a file without it, and one with an XYZ source', () => {
    expect(parseConfig(yaml('null').replace(/web:[\s\S]*/, ''), CloudServiceConfig).web).toBeUndefined();
    const cfg = parseConfig(yaml(JSON.stringify(TIANDITU_XYZ)), CloudServiceConfig);
    expect(cfg.web?.map?.tiles).toEqual(TIANDITU_XYZ);
    expect(checkWebOptions(cfg.web)).toEqual([]);
  });

  it('refuses an unknown kind, a non-http url and an unknown key, naming each key', () => {
    expect(problemsOf(() => parseConfig(yaml("{ kind: tms, url: 'https://x/{z}/{x}/{y}.png' }"), CloudServiceConfig))).toContain('web.map.tiles.kind');
    expect(problemsOf(() => parseConfig(yaml("{ kind: xyz, url: 'javascript:alert(1)//{z}{x}{y}' }"), CloudServiceConfig))).toContain('web.map.tiles.url');
    expect(problemsOf(() => parseConfig(yaml("{ kind: xyz, url: 'https://x/{z}/{x}/{y}.png', token: k }"), CloudServiceConfig))).toContain('web.map.tiles.token');
  });

  it('refuses what the schema cannot see: placeholders per kind, {s} without subdomains, WMTS without a layer', async () => {
    const build = (tiles: MapTiles) => () => buildCloud({ db: { kind: 'sqlite', file: ':memory:' }, district, profiles, web: { map: { tiles } } });
    const refused = async (tiles: MapTiles) => {
      const err = await build(tiles)().then(() => undefined, (e: unknown) => e);
      return problemsOf(() => { if (err) throw err; });
    };
    expect(await refused({ kind: 'xyz', url: 'https://tiles.example/{x}/{y}.png' })).toEqual(['web.map.tiles.url']);
    expect(await refused({ kind: 'xyz', url: 'https://t{s}.example/{z}/{x}/{y}.png' })).toEqual(['web.map.tiles.subdomains']);
    expect(await refused({ kind: 'wmts', url: 'https://t0.tianditu.gov.cn/vec_w/wmts' })).toEqual(['web.map.tiles.layer']);
    expect(await refused({ kind: 'xyz', url: 'https://x/{z}/{x}/{y}.png', layer: 'vec' })).toEqual(['web.map.tiles.layer']);
  });

  it("names the tile source's origins for the page's CSP, each subdomain expanded", () => {
    expect(tileOrigins(null)).toEqual([]);
    expect(tileOrigins({ kind: 'xyz', url: 'https://t{s}.tianditu.gov.cn/x/{z}/{x}/{y}', subdomains: '01' }))
      .toEqual(['https://t0.tianditu.gov.cn', 'https://t1.tianditu.gov.cn']);
    expect(tileOrigins({ kind: 'wmts', url: 'http://10.1.2.3:8080/wmts', layer: 'vec' })).toEqual(['http://10.1.2.3:8080']);
  });
});
