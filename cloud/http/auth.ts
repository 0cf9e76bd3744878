import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { ROLES, type Principal, type Role, type TokenStore } from '../tokens.ts';
import { SESSION_COOKIE, type SessionStore } from '../sessions.ts';
import { tokenBucket, type TokenBucket } from '../../lib/rate-limit.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** A route anyone may call (health, sign-in); every other route needs a bearer token or a session. */
    public?: boolean;
    /** The roles that may call the route (403 CS_CLOUD_FORBIDDEN for others); every role when omitted. */
    roles?: readonly Role[];
  }
  interface FastifyInstance {
    /** Who may call each route, from its config: `"POST /api/cases/:id/void"` -> access. */
    routeAccess: ReadonlyMap<string, RouteAccess>;
  }
}

/** A route's access as its config declares it: public, or the roles a token needs. */
export interface RouteAccess {
  public: boolean;
  roles: readonly Role[];
}

function isPublic(req: FastifyRequest): boolean {
  if (req.routeOptions.config?.public === true) return true;
  const path = req.url.split('?')[0];
  // Open311 is public by the spec (an unknown path there answers the spec's 404; POST checks its api_key).
  return path === '/docs' || path.startsWith('/docs/') || path.startsWith('/open311/');
}

export interface AuthOptions {
  tokens: TokenStore;
  sessions: SessionStore;
  /** Requests per second and burst per credential (token or session); 0 turns the limit off. */
  rate: { requestsPerSecond: number; burst: number };
  /** Real elapsed time for the rate limit (not the city's clock). */
  clock: () => number;
}

/** Buckets kept at most (one per credential seen lately); the oldest goes first. */
const MAX_BUCKETS = 10_000;

/**
 * The CSRF rule for cookie-authenticated unsafe methods (docs/architecture.md#sign-in-and-sessions):
 * same origin by `Sec-Fetch-Site: same-origin`, or an `Origin` whose host is the request's `Host`.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  if (req.headers['sec-fetch-site'] === 'same-origin') return true;
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== 'string' || !host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Deny by default: every route, matched or not, needs `Authorization: Bearer TOKEN` or the
 * session cookie, except public ones (`GET /healthz`, `POST /api/session`) and the docs
 * (`/docs`, `/docs/json`...). A bearer header wins over a cookie. Cookie-authenticated unsafe
 * requests must be same-origin (403 CS_CLOUD_CSRF). Each credential gets a token bucket of requests
 * (429 CS_CLOUD_RATE_LIMITED); the live event stream is not counted (its own cap applies).
 */
export function installAuth(app: FastifyInstance, opts: AuthOptions): void {
  const access = new Map<string, RouteAccess>();
  app.decorate('routeAccess', access);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = route.config as { public?: boolean; roles?: readonly Role[] } | undefined;
    for (const m of methods) access.set(`${m} ${route.url}`, { public: config?.public === true, roles: config?.roles ?? ROLES });
  });
  const buckets = new Map<string, TokenBucket>();
  const { requestsPerSecond, burst } = opts.rate;
  function overRate(key: string): boolean {
    if (!(requestsPerSecond > 0)) return false;
    let b = buckets.get(key);
    if (!b) {
      b = tokenBucket({ ratePerSecond: requestsPerSecond, burst: Math.max(1, burst), now: opts.clock });
      buckets.set(key, b);
      if (buckets.size > MAX_BUCKETS) buckets.delete(buckets.keys().next().value!);
    }
    return !b.tryTake();
  }

  app.addHook('onRequest', async (req, reply) => {
    if (isPublic(req)) return;
    const principal = await authenticate(req, opts);
    if (principal.via === 'session' && req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) {
      throw new CsError(CloudErrors.CSRF, 'a signed-in browser request that changes something must come from this site (Origin or Sec-Fetch-Site)');
    }
    req.principal = principal;
    const roles = req.routeOptions.config?.roles;
    if (roles && !roles.includes(principal.role)) {
      throw new CsError(CloudErrors.FORBIDDEN, `role ${principal.role} may not do this (needs ${roles.join(' or ')})`);
    }
    if (req.routeOptions.url !== '/api/events' && overRate(principal.tokenId)) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(1 / requestsPerSecond))));
      throw new CsError(CloudErrors.RATE_LIMITED, `more than ${requestsPerSecond} requests per second (burst ${burst}) on this credential; slow down`);
    }
  });
}

async function authenticate(req: FastifyRequest, opts: AuthOptions): Promise<Principal> {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new CsError(CloudErrors.AUTH_INVALID, 'the Authorization header must be "Bearer TOKEN"');
    const principal = await opts.tokens.verify(m[1]);
    if (!principal) throw new CsError(CloudErrors.AUTH_INVALID, 'token unknown or revoked');
    return principal;
  }
  const cookie = req.cookies?.[SESSION_COOKIE];
  if (!cookie) throw new CsError(CloudErrors.AUTH_MISSING, 'authorization required: sign in (POST /api/session) or send "Authorization: Bearer TOKEN"');
  const principal = await opts.sessions.verify(cookie);
  if (!principal) throw new CsError(CloudErrors.AUTH_INVALID, 'session expired or signed out: sign in again');
  return principal;
}

/** The principal of an authenticated request (the hook guarantees one on non-public routes). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new CsError(CloudErrors.AUTH_MISSING, 'authorization required');
  return req.principal;
}

/** The unit a principal is confined to (crew), or undefined for roles that see every unit. */
export function scopeUnit(p: Principal): string | undefined {
  return p.role === 'crew' ? (p.unit ?? '\u0000no-unit') : undefined;
}
