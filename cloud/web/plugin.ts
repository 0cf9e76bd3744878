import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Profile } from '../../devices/profile.ts';

/**
 * The operator dashboard (issue #2): a page, one ES module and one stylesheet, served from memory
 * (read once when the plugin registers; no @fastify/static, no build step). The files hold no data,
 * so they are public (`config.public`); every data call the page makes carries the bearer token,
 * and `/web/points.json` (point names and units per profile) needs one like any /api route.
 */

export const WEB_PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

export interface DashboardOptions {
  profiles: Map<string, Profile>;
  /** Where index.html, dashboard.js and dashboard.css are; cloud/web/public by default. */
  dir?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** Short content hash: the page links `?v=HASH`, which may be cached for good. */
  version: string;
}

/** `GET /web/points.json`: what the page needs to label readings (documents the OpenAPI entry). */
export const PointCatalogue = Type.Object({
  profiles: Type.Record(Type.String(), Type.Object({
    kind: Type.String(),
    points: Type.Array(Type.Object({ key: Type.String(), name: Type.String(), unit: Type.String() })),
  })),
});

const ASSETS = [
  { file: 'dashboard.js', url: '/web/dashboard.js', type: 'text/javascript; charset=utf-8' },
  { file: 'dashboard.css', url: '/web/dashboard.css', type: 'text/css; charset=utf-8' },
] as const;

/**
 * The page's policy: only its own script, style and API (no inline script, no external origin:
 * the dashboard must work without internet). `no-referrer` keeps even the path out of other logs.
 */
const PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

function asset(body: Buffer, type: string): Asset {
  const hash = createHash('sha256').update(body).digest('base64url');
  return { body, type, etag: `"${hash.slice(0, 27)}"`, version: hash.slice(0, 12) };
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, cacheControl: string, extra: Record<string, string> = {}) {
  reply.header('content-type', a.type).header('etag', a.etag).header('cache-control', cacheControl)
    .header('x-content-type-options', 'nosniff');
  for (const [k, v] of Object.entries(extra)) reply.header(k, v);
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.send(a.body);
}

/** Registers `GET /` (the page), `/web/dashboard.js`, `/web/dashboard.css` and `/web/points.json`. */
export async function dashboard(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const dir = opts.dir ?? WEB_PUBLIC_DIR;
  const assets = new Map(ASSETS.map((x) => [x.url, asset(readFileSync(join(dir, x.file)), x.type)]));
  // Link each asset by its content hash, so a new version is fetched at once and an old one never is.
  let html = readFileSync(join(dir, 'index.html'), 'utf8');
  for (const [url, a] of assets) html = html.replaceAll(`"${url}"`, `"${url}?v=${a.version}"`);
  const page = asset(Buffer.from(html), 'text/html; charset=utf-8');
  const points = JSON.stringify({
    profiles: Object.fromEntries([...opts.profiles.values()].map((p) => [p.id, {
      kind: p.kind, points: p.points.map((pt) => ({ key: pt.key, name: pt.name, unit: pt.unit })),
    }])),
  });

  const hidden = { hide: true } as const;
  // The page is revalidated on every load (cheap: 304), so a deployment shows up on reload.
  app.get('/', { config: { public: true }, schema: hidden }, (req, reply) =>
    send(req, reply, page, 'no-cache', { 'content-security-policy': PAGE_CSP, 'referrer-policy': 'no-referrer' }));
  for (const [url, a] of assets) {
    app.get(url, { config: { public: true }, schema: hidden }, (req, reply) => {
      const v = (req.query as Record<string, unknown>).v;
      return send(req, reply, a, v === a.version ? 'public, max-age=31536000, immutable' : 'no-cache');
    });
  }
  app.get('/web/points.json', {
    schema: { summary: 'Point names and units per device profile, for the dashboard', tags: ['dashboard'], response: { 200: PointCatalogue } },
  }, (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'private, no-cache').send(points));
}
