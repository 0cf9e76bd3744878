import { createHash, randomBytes } from 'node:crypto';
import type { Database } from './db/database.ts';
import type { Principal, Role } from './tokens.ts';
import type { User } from './users.ts';

/**
 * Sign-in sessions (docs/architecture.md#sign-in-and-sessions). The cookie holds 32 random bytes
 * (base64url); only their sha256 is stored. A session ends after `idleMs` without a request or
 * `absoluteMs` after sign-in, whichever comes first, when signed out, when the password changes or
 * the account is disabled.
 */

export const SESSION_COOKIE = 'cs_session';

export interface SessionPolicy {
  /** Idle expiry: default 12 h. */
  idleMs: number;
  /** Absolute expiry from sign-in: default 7 days. */
  absoluteMs: number;
}
export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleMs: 12 * 3_600_000, absoluteMs: 7 * 86_400_000 };

/** `last_seen_at` is written at most this often per session (not on every request). */
const TOUCH_EVERY_MS = 60_000;
const COOKIE_RE = /^[A-Za-z0-9_-]{43}$/;

export function hashSessionId(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** The key of a session for per-credential caps and logs: never the cookie value. */
export const sessionKey = (idHash: string) => `ses_${idHash.slice(0, 16)}`;

export interface SessionStore {
  /** A new session for the user; `value` goes into the cookie and exists nowhere else. */
  /** `maxAgeMs`: how long from now the session lives (the cookie's Max-Age). */
  create(user: User): Promise<{ value: string; expiresAt: number; maxAgeMs: number }>;
  /** The principal of a live session of an enabled user; undefined otherwise. */
  verify(value: string): Promise<Principal | undefined>;
  /** Revokes a session by its stored hash; false when unknown or already ended. */
  revoke(idHash: string): Promise<boolean>;
}

export function createSessionStore(database: Database, now: () => number, policy: SessionPolicy = DEFAULT_SESSION_POLICY): SessionStore {
  const db = database.db;
  return {
    async create(user) {
      const value = randomBytes(32).toString('base64url');
      const at = now();
      const expiresAt = at + policy.absoluteMs;
      await database.write(async (trx) => {
        // The user's ended sessions go when a new one starts: the table holds live sessions and few others.
        await trx.deleteFrom('sessions').where('user_id', '=', user.id).where((eb) => eb.or([
          eb('revoked_at', 'is not', null), eb('expires_at', '<=', at), eb('last_seen_at', '<=', at - policy.idleMs),
        ])).execute();
        await trx.insertInto('sessions').values({
          id_hash: hashSessionId(value), user_id: user.id, created_at: at, last_seen_at: at, expires_at: expiresAt, revoked_at: null,
        }).execute();
      });
      return { value, expiresAt, maxAgeMs: policy.absoluteMs };
    },
    async verify(value) {
      if (!COOKIE_RE.test(value)) return undefined;
      const idHash = hashSessionId(value);
      const row = await db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['sessions.last_seen_at', 'sessions.expires_at', 'sessions.revoked_at', 'users.username', 'users.role', 'users.unit', 'users.disabled_at'])
        .where('sessions.id_hash', '=', idHash).executeTakeFirst();
      if (!row || row.revoked_at !== null || row.disabled_at !== null) return undefined;
      const at = now();
      const lastSeen = Number(row.last_seen_at);
      if (at >= Number(row.expires_at) || at >= lastSeen + policy.idleMs) return undefined;
      if (at - lastSeen >= TOUCH_EVERY_MS) {
        await database.write((trx) => trx.updateTable('sessions').set({ last_seen_at: at }).where('id_hash', '=', idHash).execute());
      }
      return {
        tokenId: sessionKey(idHash), role: row.role as Role, unit: row.unit, actor: `user:${row.username}`, via: 'session',
        username: row.username, sessionHash: idHash,
      };
    },
    async revoke(idHash) {
      const r = await database.write((trx) => trx.updateTable('sessions').set({ revoked_at: now() })
        .where('id_hash', '=', idHash).where('revoked_at', 'is', null).executeTakeFirst());
      return Number(r.numUpdatedRows) > 0;
    },
  };
}
