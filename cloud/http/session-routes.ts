import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CsError } from '../../lib/errors.ts';
import { LoginRefused, loginGuard, type LoginGuardOptions } from '../../lib/login-guard.ts';
import { CloudErrors } from '../errors.ts';
import { SESSION_COOKIE, type SessionStore } from '../sessions.ts';
import type { UserStore } from '../users.ts';
import { principalOf, sameOrigin } from './auth.ts';
import * as S from './schemas.ts';

/**
 * Sign-in (docs/architecture.md#sign-in-and-sessions): POST /api/session sets the session cookie,
 * GET answers who is signed in, DELETE signs out. Failed sign-ins are slowed down per account from
 * one address, per address and per account from anywhere (lib/login-guard.ts, as the broker's
 * CONNECT); scrypt runs in its bounded lane.
 */

/** The fifth wrong password locks that account from that address for 5 s, doubling per failure up to 15 min. */
export const DEFAULT_SIGNIN_GUARD: LoginGuardOptions = {
  freeFailuresPerUsername: 4,
  freeFailuresPerAddress: 20,
  freeFailuresPerAccount: 50,
  backoffMs: 5_000,
  maxBackoffMs: 15 * 60_000,
  failureWindowMs: 15 * 60_000,
  maxQueuedChecks: 256,
};

export interface SessionRouteDeps {
  users: UserStore;
  sessions: SessionStore;
  /** Real elapsed time for the sign-in locks (not the city's clock). */
  clock: () => number;
  guard?: LoginGuardOptions;
}

const SignInBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 256 }),
  password: Type.String({ minLength: 1, maxLength: 1024 }),
}, { additionalProperties: false, $id: 'SignInBody' });

const SessionUser = Type.Object({
  user: Type.Object({
    username: Type.String(),
    role: Type.String(),
    unit: Type.Union([Type.String(), Type.Null()]),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

const cookieOptions = (req: FastifyRequest) => ({ httpOnly: true, sameSite: 'strict' as const, path: '/', secure: req.protocol === 'https' });

function throttled(reply: FastifyReply, retryInMs: number, what: string): never {
  reply.header('retry-after', String(Math.max(1, Math.ceil(retryInMs / 1000))));
  throw new CsError(CloudErrors.SIGNIN_THROTTLED, `too many failed sign-ins ${what}; try again in ${Math.max(1, Math.ceil(retryInMs / 1000))} s`);
}

export function registerSessionRoutes(root: FastifyInstance, deps: SessionRouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const guard = loginGuard({ ...DEFAULT_SIGNIN_GUARD, ...deps.guard, now: deps.clock });
  const whatOf = { username: 'for this account from this address', address: 'from this address', account: 'for this account' } as const;

  app.post('/api/session', {
    config: { public: true },
    schema: {
      summary: 'Sign in with a user name and password: sets the session cookie (HttpOnly, SameSite=Strict); no token needed',
      tags: ['session'], security: [], body: SignInBody,
      response: { 200: SessionUser, 401: S.ErrorReply, 403: S.ErrorReply, 429: S.ErrorReply, 400: S.ErrorReply },
    },
  }, async (req, reply) => {
    // Login CSRF: a browser that says where the form came from must say this site.
    const site = req.headers['sec-fetch-site'];
    if ((req.headers.origin !== undefined || (site !== undefined && site !== 'none')) && !sameOrigin(req)) {
      throw new CsError(CloudErrors.CSRF, 'sign-in must come from this site');
    }
    const username = req.body.username.trim().toLowerCase();
    const address = req.ip;
    const lock = guard.throttled(username, address);
    if (lock?.kind === 'throttled') throttled(reply, lock.retryInMs, whatOf[lock.key]);
    let user;
    try {
      user = await guard.check(username, address, () => deps.users.authenticate(username, req.body.password));
    } catch (err) {
      if (!(err instanceof LoginRefused)) throw err;
      const r = err.refusal;
      throttled(reply, r.kind === 'throttled' ? r.retryInMs : 1000, r.kind === 'throttled' ? whatOf[r.key] : '(too many waiting)');
    }
    if (!user) {
      guard.failed(username, address);
      // A password typed into the name field must not reach the log: unknown names are not logged.
      req.log.info({ username: (await deps.users.get(username)) ? username : '(unknown)', address }, 'sign-in failed');
      throw new CsError(CloudErrors.SIGNIN_FAILED, 'user name or password wrong');
    }
    guard.succeeded(username, address);
    const session = await deps.sessions.create(user);
    req.log.info({ username, role: user.role }, 'signed in');
    // Max-Age, relative, not Expires: a browser whose clock differs from the server's keeps the cookie (RFC 6265 4.1.2.2).
    reply.setCookie(SESSION_COOKIE, session.value, { ...cookieOptions(req), maxAge: Math.floor(session.maxAgeMs / 1000) });
    return { user: { username: user.username, role: user.role, unit: user.unit } };
  });

  app.get('/api/session', {
    schema: {
      summary: 'Who is signed in (the session cookie); 401 without a session',
      tags: ['session'], response: { 200: SessionUser, ...S.authErrors, 429: S.ErrorReply },
    },
  }, async (req) => {
    const p = principalOf(req);
    if (p.via !== 'session' || !p.username) throw new CsError(CloudErrors.AUTH_MISSING, 'no session: this request carries a bearer token');
    return { user: { username: p.username, role: p.role, unit: p.unit } };
  });

  app.delete('/api/session', {
    schema: {
      summary: 'Sign out: ends the session and clears the cookie',
      tags: ['session'], response: { 204: Type.Null(), ...S.authErrors },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (p.sessionHash) await deps.sessions.revoke(p.sessionHash);
    reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
    return reply.code(204).send(null);
  });
}
