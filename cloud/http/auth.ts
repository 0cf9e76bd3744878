import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { ROLES, type Principal, type Role, type TokenStore } from '../tokens.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** A route anyone may call (health); every other route needs a bearer token. */
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
  return path === '/docs' || path.startsWith('/docs/');
}

/**
 * Deny by default: every route, matched or not, needs `Authorization: Bearer TOKEN`,
 * except public ones (`GET /healthz`) and the docs (`/docs`, `/docs/json`...).
 */
export function installAuth(app: FastifyInstance, tokens: TokenStore): void {
  const access = new Map<string, RouteAccess>();
  app.decorate('routeAccess', access);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = route.config as { public?: boolean; roles?: readonly Role[] } | undefined;
    for (const m of methods) access.set(`${m} ${route.url}`, { public: config?.public === true, roles: config?.roles ?? ROLES });
  });
  app.addHook('onRequest', async (req) => {
    if (isPublic(req)) return;
    const header = req.headers.authorization;
    if (!header) throw new CsError(CloudErrors.AUTH_MISSING, 'authorization required: send "Authorization: Bearer TOKEN"');
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw new CsError(CloudErrors.AUTH_INVALID, 'the Authorization header must be "Bearer TOKEN"');
    const principal = await tokens.verify(m[1]);
    if (!principal) throw new CsError(CloudErrors.AUTH_INVALID, 'token unknown or revoked');
    req.principal = principal;
    const roles = req.routeOptions.config?.roles;
    if (roles && !roles.includes(principal.role)) {
      throw new CsError(CloudErrors.FORBIDDEN, `role ${principal.role} may not do this (needs ${roles.join(' or ')})`);
    }
  });
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
