/**
 * The gateway's own small HTTP endpoint (Fastify):
 *
 *   GET    /healthz                               liveness and open connections (no auth)
 *   GET    /metrics                               Prometheus text (no auth; bind it to a private address)
 *   GET    /admin/credentials                     every credential, never a hash       (admin token)
 *   POST   /admin/credentials {username, role}    create; answers the password once   (admin token)
 *   POST   /admin/credentials/:username/rotate    new password, answered once          (admin token)
 *   DELETE /admin/credentials/:username           revoke; live connections are closed (admin token)
 *
 * The cloud is a separate service: it (or an operator's script) reaches the credentials
 * through this API with the admin bearer token, the same operations as `citysteward
 * credential`. The admin routes exist only when an admin token is configured; without one
 * they answer 404. Errors are `{ statusCode, code, error, message }` like the cloud's API.
 *
 * The server sheds what it cannot serve (issue 10, finding 3): headers within 5 s, a whole
 * request within 10 s, an idle keep-alive connection closed after 5 s, 32 connections per
 * address and 256 in all (at the cap the oldest idle one makes room). The timeouts and caps are
 * the cloud's (lib/http-limits.ts), with smaller numbers: this endpoint serves a scraper and scripts.
 */
import { STATUS_CODES } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { CsError } from '../lib/errors.ts';
import { ID_PATTERN } from '../lib/topics.ts';
import type { Logger } from '../lib/log.ts';
import { CREDENTIAL_ROLES, type CredentialStore, type Role } from './credentials.ts';
import { GatewayErrors } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
import { guardConnections, serverOptions, type ConnectionStats } from '../lib/http-limits.ts';
import { adminHttpLimits, type AdminHttpLimits } from './admin-limits.ts';

export { adminHttpLimits, DEFAULT_ADMIN_HTTP_LIMITS, type AdminHttpLimits } from './admin-limits.ts';

/** Timeouts (ms) and connection caps of the admin endpoint. */
export interface AdminOptions {
  credentials: CredentialStore;
  metrics: GatewayMetrics;
  /** Bearer token of the admin routes; they are absent when undefined. At least 16 characters. */
  adminToken?: string;
  logger: Logger;
  /** For /healthz. */
  connections: () => number;
  /** Timeouts and connection caps; DEFAULT_ADMIN_HTTP_LIMITS for what is omitted. */
  limits?: Partial<AdminHttpLimits>;
}

export type AdminApp = FastifyInstance & { connectionStats(): ConnectionStats };

const STATUS: Record<string, number> = {
  [GatewayErrors.USERNAME_INVALID]: 400,
  [GatewayErrors.ROLE_INVALID]: 400,
  [GatewayErrors.PASSWORD_WEAK]: 400,
  [GatewayErrors.ADMIN_BAD_REQUEST]: 400,
  [GatewayErrors.ADMIN_UNAUTHORIZED]: 401,
  [GatewayErrors.USER_UNKNOWN]: 404,
  [GatewayErrors.USER_EXISTS]: 409,
  [GatewayErrors.USER_REVOKED]: 409,
};

const Username = Type.String({ pattern: ID_PATTERN });
const IdentityReply = Type.Object({
  username: Type.String(), role: Type.String(), gateway: Type.Optional(Type.String()),
  createdAt: Type.String(), revokedAt: Type.Optional(Type.String()),
});

export const MIN_ADMIN_TOKEN_LENGTH = 16;

export async function buildAdminApp(opts: AdminOptions): Promise<AdminApp> {
  const log = opts.logger;
  if (opts.adminToken !== undefined && opts.adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new CsError(GatewayErrors.ADMIN_BAD_REQUEST, `the admin token must have at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  // Fastify's own per-request lines at warn and above only (Prometheus scrapes often); audit lines use `log`.
  const limits = adminHttpLimits(opts.limits);
  const app = Fastify({
    loggerInstance: log.child({}, { level: 'warn' }), bodyLimit: 16 * 1024, ...serverOptions(limits),
  }) as unknown as FastifyInstance;
  const connectionStats = guardConnections(app.server, limits, log);

  app.setErrorHandler((err: FastifyError | CsError | Error, req, reply) => {
    const fe = err as FastifyError;
    let statusCode = 500;
    let code: string = 'CS_GW_ADMIN_INTERNAL';
    let message = 'internal server error';
    if (fe.validation) {
      statusCode = 400;
      code = GatewayErrors.ADMIN_BAD_REQUEST;
      message = `${fe.validationContext ?? 'request'} ${fe.validation[0]?.instancePath || ''} ${fe.validation[0]?.message ?? fe.message}`.replace(/\s+/g, ' ');
    } else if (err instanceof CsError) {
      statusCode = STATUS[err.code] ?? 500;
      code = err.code;
      message = statusCode >= 500 ? 'internal server error' : err.message;
    } else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      statusCode = fe.statusCode;
      code = GatewayErrors.ADMIN_BAD_REQUEST;
      message = err.message;
    }
    if (statusCode >= 500) log.error({ err, url: req.url, method: req.method }, 'admin request failed');
    if (statusCode === 401) reply.header('www-authenticate', 'Bearer');
    return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({
    statusCode: 404, code: 'CS_GW_ADMIN_NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}`,
  }));

  app.get('/healthz', async () => ({ status: 'ok', connections: opts.connections() }));
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.metrics.registry.contentType);
    return opts.metrics.registry.metrics();
  });

  const token = opts.adminToken;
  if (token !== undefined) {
    const expected = digest(token);
    await app.register(async (admin) => {
      admin.addHook('onRequest', async (req) => {
        const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        if (!m || !timingSafeEqual(digest(m[1]), expected)) {
          log.warn({ remote: req.ip, url: req.url, method: req.method }, 'admin request refused: missing or wrong token');
          throw new CsError(GatewayErrors.ADMIN_UNAUTHORIZED, 'admin routes need Authorization: Bearer ADMIN_TOKEN');
        }
      });
      const store = opts.credentials;
      admin.get('/admin/credentials', { schema: { response: { 200: Type.Array(IdentityReply) } } }, async () => store.list());
      admin.post('/admin/credentials', {
        schema: { body: Type.Object({ username: Username, role: Type.Union(CREDENTIAL_ROLES.map((r) => Type.Literal(r))) }, { additionalProperties: false }) },
      }, async (req, reply) => {
        const body = req.body as { username: string; role: Role };
        const { identity, password } = store.create(body.username, body.role);
        log.info({ username: identity.username, role: identity.role, by: 'admin-api' }, 'credential created');
        return reply.code(201).send({ ...identity, password });
      });
      admin.post('/admin/credentials/:username/rotate', { schema: { params: Type.Object({ username: Username }) } }, async (req) => {
        const { username } = req.params as { username: string };
        const { password } = store.rotate(username);
        log.info({ username, by: 'admin-api' }, 'credential rotated');
        return { username, password };
      });
      admin.delete('/admin/credentials/:username', { schema: { params: Type.Object({ username: Username }) } }, async (req) => {
        const { username } = req.params as { username: string };
        store.revoke(username); // emits `revoked`: the broker closes that identity's connections
        log.info({ username, by: 'admin-api' }, 'credential revoked');
        return store.get(username);
      });
    });
  }
  return Object.assign(app, { connectionStats });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
