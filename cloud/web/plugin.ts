import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Profile } from '../../devices/profile.ts';
import type { Logger } from '../../lib/log.ts';

/**
 * The web application (docs/architecture.md#web-application): built by Vite into cloud/web/dist
 * (`npm run build:web`, run by `npm install`) and served from memory, read once when the plugin
 * registers. The page and its files hold no data, so they are public (`config.public`); every data
 * call the page makes carries the session cookie. The page's own paths (SPA_PATHS) answer the
 * page; /api and anything else unknown stays a 404 from the API.
 */

export const WEB_DIST_DIR = fileURLToPath(new URL('./dist/', import.meta.url));

/** The client-side routes (cloud/web/app/src/router.ts) that load the page on a reload or a shared link. */
export const SPA_PATHS = ['/', '/signin', '/crew', '/crew/*', '/verify', '/verify/*', '/command', '/operator', '/operator/*', '/inspect', '/report', '/ranking'] as const;

export interface WebAppOptions {
  profiles: Map<string, Profile>;
  /** The built application; cloud/web/dist by default. */
  dir?: string;
  logger?: Logger;
  /** Image origins besides the page's own: the configured map tiles' (config-route.ts tileOrigins). */
  imgOrigins?: readonly string[];
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** `GET /web/points.json`: what the pages need to label readings (documents the OpenAPI entry). */
export const PointCatalogue = Type.Object({
  profiles: Type.Record(Type.String(), Type.Object({
    kind: Type.String(),
    points: Type.Array(Type.Object({ key: Type.String(), name: Type.String(), unit: Type.String() })),
  })),
});

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.webp': 'image/webp',
  '.jpg': 'image/jpeg', '.woff2': 'font/woff2', '.geojson': 'application/geo+json', '.mp3': 'audio/mpeg', '.wav': 'audio/wav',
};

/**
 * The page's policy: only its own scripts, styles, images and API, nothing from another origin
 * (the application must work without internet). Photos previewed before upload are blob: URLs.
 * `no-referrer` keeps even the path out of other logs.
 */
export const pageCsp = (imgOrigins: readonly string[] = []): string => [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", ["img-src 'self' data: blob:", ...imgOrigins].join(' '), "connect-src 'self'",
  "font-src 'self'", "media-src 'self' data: blob:", "manifest-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');
export const PAGE_CSP = pageCsp();

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>CitySteward</title>
<h1>The web application is not built · 网页应用尚未构建</h1><p>Run <code>npm run build:web</code> (npm install does it) and restart.</p></html>`;

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset, cacheControl: string, extra: Record<string, string> = {}) {
  reply.header('content-type', a.type).header('etag', a.etag).header('cache-control', cacheControl)
    .header('x-content-type-options', 'nosniff');
  for (const [k, v] of Object.entries(extra)) reply.header(k, v);
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.send(a.body);
}

/** Registers the page at SPA_PATHS, the built files at `/assets/*` and `/web/points.json`. */
export async function webApp(app: FastifyInstance, opts: WebAppOptions): Promise<void> {
  const dir = opts.dir ?? WEB_DIST_DIR;
  const csp = pageCsp(opts.imgOrigins);
  const built = existsSync(join(dir, 'index.html'));
  if (!built) opts.logger?.warn({ dir }, 'the web application is not built: run npm run build:web');
  const page = asset(built ? readFileSync(join(dir, 'index.html')) : Buffer.from(NOT_BUILT), TYPES['.html']);
  const assets = new Map<string, Asset>();
  if (built) {
    for (const p of files(dir)) {
      const rel = relative(dir, p).split(sep).join('/');
      if (rel === 'index.html') continue;
      assets.set(`/${rel}`, asset(readFileSync(p), TYPES[extname(p)] ?? 'application/octet-stream'));
    }
  }
  const points = JSON.stringify({
    profiles: Object.fromEntries([...opts.profiles.values()].map((p) => [p.id, {
      kind: p.kind, points: p.points.map((pt) => ({ key: pt.key, name: pt.name, unit: pt.unit })),
    }])),
  });

  const hidden = { hide: true } as const;
  // The page is revalidated on every load (cheap: 304), so a deployment shows up on reload.
  const sendPage = (req: FastifyRequest, reply: FastifyReply) =>
    send(req, reply, page, 'no-cache', { 'content-security-policy': csp, 'referrer-policy': 'no-referrer' });
  for (const path of SPA_PATHS) app.get(path, { config: { public: true }, schema: hidden }, sendPage);
  // Vite names every built file by its content hash: cache it for good.
  app.get('/assets/*', { config: { public: true }, schema: hidden }, (req, reply) => {
    const a = assets.get(req.url.split('?')[0]);
    if (!a) return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found');
    return send(req, reply, a, 'public, max-age=31536000, immutable');
  });
  app.get('/web/points.json', {
    schema: { summary: 'Point names and units per device profile, for the pages', tags: ['web'], response: { 200: PointCatalogue } },
  }, (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'private, no-cache').send(points));
}
