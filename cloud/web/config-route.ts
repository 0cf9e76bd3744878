import { derive } from '../registry/view.ts';
import { Type, type Static } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { District } from '../../devices/district.ts';
import { ConfigError } from '../../lib/config.ts';
import { LibErrors } from '../../lib/errors.ts';
import { check, type SchemaProblem } from '../../lib/schema.ts';
import * as S from '../http/schemas.ts';
import { ROLES } from '../roles.ts';

/**
 * `GET /api/web/config`: what the web application needs from the deployment (docs/map-data.md):
 * the city's time zone and the map's start view and optional tile source. The map works without
 * tiles (bundled district outlines); a city with a map service (Tianditu) sets `web.map.tiles`.
 */

/** The zone the pages show times in (Zhuhai: UTC+8, no daylight saving). */
export const CITY_TIME_ZONE = 'Asia/Shanghai';

/**
 * A tile source in Web Mercator whose coordinates agree with WGS-84 (Tianditu's `_w` layers are
 * CGCS2000; GCJ-02 sources such as AMap would be offset ~600 m: docs/map-data.md#coordinates).
 * `xyz`: `url` is a template with {z}, {x}, {y} (and {s} with `subdomains`). `wmts`: `url` is the
 * service endpoint (KVP GetTile, as Tianditu serves it; extra query such as `tk=KEY` kept), `layer` required.
 * The url is sent to every signed-in browser: put only browser keys in it.
 */
export const MapTiles = Type.Object({
  kind: Type.Union([Type.Literal('xyz'), Type.Literal('wmts')]),
  url: Type.String({ pattern: '^https?://[^\\s"\'<>]+$', maxLength: 2000 }),
  attribution: Type.Optional(Type.String({ maxLength: 500, description: 'plain text, shown as text (not HTML)' })),
  subdomains: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { minItems: 1, maxItems: 32 })])),
  /** WMTS only: LAYER (Tianditu: vec, img, cva...). */
  layer: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' })),
  /** WMTS only: TILEMATRIXSET, a Web Mercator set (Tianditu: `w`). */
  tileMatrixSet: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' })),
  /** WMTS only: STYLE (default `default`) and FORMAT (default `tiles`, Tianditu's). */
  style: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' })),
  format: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:/+-]+$' })),
  maxZoom: Type.Optional(Type.Integer({ minimum: 1, maximum: 22 })),
}, { additionalProperties: false });
export type MapTiles = Static<typeof MapTiles>;

/** The cloud config's `web` key (cli/config.ts CloudServiceConfig). */
export const WebConfigKey = Type.Object({
  map: Type.Optional(Type.Object({ tiles: Type.Optional(MapTiles) }, { additionalProperties: false })),
}, { additionalProperties: false });
export type WebOptions = Static<typeof WebConfigKey>;

export const WebConfigReply = Type.Object({
  timeZone: Type.String({ description: 'IANA zone the pages show times in' }),
  map: Type.Object({
    tiles: Type.Union([MapTiles, Type.Null()], { description: 'null: no tile layer, the bundled district outlines only' }),
    center: Type.Tuple([Type.Number(), Type.Number()], { description: "[lat, lon] WGS-84: the middle of the devices' extent" }),
    zoom: Type.Integer({ description: "a zoom that shows the devices' extent" }),
    bounds: Type.Tuple([Type.Tuple([Type.Number(), Type.Number()]), Type.Tuple([Type.Number(), Type.Number()])], { description: '[[south, west], [north, east]] of the devices' }),
  }),
});
export type WebConfigReply = Static<typeof WebConfigReply>;

/** What the schema cannot say: the url's placeholders per kind, {s} needing subdomains, WMTS's layer. */
export function checkWebOptions(web: unknown, prefix = 'web'): SchemaProblem[] {
  const r = check(WebConfigKey, web ?? {});
  if (!r.ok) return r.problems.map((p) => ({ key: p.key === '(root)' ? prefix : `${prefix}.${p.key}`, message: p.message }));
  const t = r.value.map?.tiles;
  if (!t) return [];
  const key = `${prefix}.map.tiles`;
  const problems: SchemaProblem[] = [];
  const has = (p: string) => t.url.includes(`{${p}}`);
  if (t.kind === 'xyz') {
    const missing = ['z', 'x', 'y'].filter((p) => !has(p));
    if (missing.length) problems.push({ key: `${key}.url`, message: `an xyz url needs ${missing.map((p) => `{${p}}`).join(', ')}` });
    for (const k of ['layer', 'tileMatrixSet', 'style', 'format'] as const) if (t[k] !== undefined) problems.push({ key: `${key}.${k}`, message: 'only for kind wmts' });
  } else {
    if (has('z') || has('x') || has('y')) problems.push({ key: `${key}.url`, message: 'a wmts url is the service endpoint (KVP GetTile); the tile parameters are added' });
    if (!t.layer) problems.push({ key: `${key}.layer`, message: 'required for kind wmts' });
  }
  if (has('s') && !t.subdomains) problems.push({ key: `${key}.subdomains`, message: 'required when the url has {s}' });
  return problems;
}

/** Validated `web` options, or a ConfigError (CS_CONFIG_INVALID) naming each bad key. */
export function webOptions(web: unknown, file = '(cloud options)'): WebOptions {
  const problems = checkWebOptions(web);
  if (problems.length) throw new ConfigError(LibErrors.CONFIG_INVALID, file, problems);
  return web as WebOptions | undefined ?? {};
}

/** The tile source's origins, for the page's CSP `img-src` (each {s} expanded). */
export function tileOrigins(tiles: MapTiles | null | undefined): string[] {
  if (!tiles) return [];
  const subs = tiles.subdomains === undefined ? [''] : Array.isArray(tiles.subdomains) ? tiles.subdomains : [...tiles.subdomains];
  const urls = tiles.url.includes('{s}') ? subs.map((s) => tiles.url.replaceAll('{s}', s)) : [tiles.url];
  return [...new Set(urls.map((u) => new URL(u.replace(/\{[a-z]+\}/gi, '0')).origin))];
}

/** Start view: the devices' extent, its middle, and a zoom that fits it in about 1000 × 600 px. */
export function deviceView(district: District): Omit<WebConfigReply['map'], 'tiles'> {
  // A loop, not Math.min(...): a registry of 100,000 devices is past the engine's argument limit.
  let [s, n, w, e] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const d of district.devices) {
    s = Math.min(s, d.lat); n = Math.max(n, d.lat); w = Math.min(w, d.lon); e = Math.max(e, d.lon);
  }
  if (!district.devices.length) [s, n, w, e] = [22.27, 22.27, 113.57, 113.57];
  const center: [number, number] = [(s + n) / 2, (w + e) / 2];
  const mercY = (lat: number) => Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360));
  // Pixels at zoom z: 256·2^z per 360° of longitude, per 2π of Mercator y.
  const zx = e > w ? Math.log2((1000 * 360) / (256 * (e - w))) : 18;
  const zy = n > s ? Math.log2((600 * 2 * Math.PI) / (256 * (mercY(n) - mercY(s)))) : 18;
  const zoom = Math.max(3, Math.min(18, Math.floor(Math.min(zx, zy))));
  return { center, zoom, bounds: [[s, w], [n, e]] };
}

export interface WebConfigDeps {
  district: District;
  web?: WebOptions;
}

/** Registers `GET /api/web/config` (every signed-in role). */
export function registerWebConfigRoute(root: FastifyInstance, deps: WebConfigDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  // The start view follows the live registry (cloud/registry/view.ts): computed again after a change.
  const body = derive(() => deps.district.devices, (): WebConfigReply => ({
    timeZone: CITY_TIME_ZONE,
    map: { tiles: deps.web?.map?.tiles ?? null, ...deviceView(deps.district) },
  }));
  app.get('/api/web/config', {
    config: { roles: ROLES },
    schema: {
      summary: "The web application's deployment settings: the city's time zone, the map's start view and tile source (null: offline outlines only)",
      tags: ['web'], response: { 200: WebConfigReply, ...S.authErrors },
    },
  }, async () => body());
}
