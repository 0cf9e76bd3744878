import { createHash, randomBytes } from 'node:crypto';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';
import { openDatabase, type Database, type DbOptions } from './db/database.ts';
import { cliActor, logCredentialChange } from './audit/credential-log.ts';
import { SYSTEM_ACTOR } from './cases/history.ts';

/**
 * API tokens: `cst_` + 32 random bytes in base64url, shown once; only the sha256 hex is stored.
 * Roles: admin, operator, commander, verifier, crew; a crew token belongs to exactly one unit. Issuing
 * and revoking are appended to the credential log in their transaction (cloud/audit/credential-log.ts).
 */

import { ROLES, type Role } from './roles.ts';

export { ROLES, type Role };

export interface Principal {
  /** The credential's key for per-credential caps: a token's id, or `ses_...` for a session. */
  tokenId: string;
  role: Role;
  /** Set for crew tokens: the unit whose cases they see. */
  unit: string | null;
  /** Who acts, for history and audit: `user:NAME` (a signed-in person) or `token:ID`. */
  actor: string;
  /** How the request was authenticated; cookie sessions must pass the CSRF rule on unsafe methods. */
  via: 'token' | 'session';
  /** The signed-in person (sessions only). */
  username?: string;
  /** sha256 hex of the session cookie (sessions only), to sign out. */
  sessionHash?: string;
}

const TOKEN_RE = /^cst_[A-Za-z0-9_-]{43}$/;

export function newToken(): string {
  return `cst_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export interface TokenStore {
  /** Issues a token; returns it (the only time it exists in clear) and its id. */
  create(role: Role, unit?: string, actor?: string): Promise<{ id: string; token: string }>;
  /** The principal of a valid, unrevoked token; undefined otherwise. */
  verify(token: string): Promise<Principal | undefined>;
  revoke(id: string, actor?: string): Promise<boolean>;
}

export function checkRoleUnit(role: string, unit: string | undefined, knownUnits?: ReadonlySet<string>): asserts role is Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new CsError(CloudErrors.TOKEN_INVALID, `unknown role "${role}" (roles: ${ROLES.join(', ')})`);
  }
  if (role === 'crew' && !unit) throw new CsError(CloudErrors.TOKEN_INVALID, 'a crew token needs a unit');
  if (role !== 'crew' && unit) throw new CsError(CloudErrors.TOKEN_INVALID, `a unit applies to crew tokens only, not to role ${role}`);
  if (unit && knownUnits && !knownUnits.has(unit)) {
    throw new CsError(CloudErrors.TOKEN_INVALID, `unknown unit "${unit}" (units: ${[...knownUnits].join(', ')})`);
  }
}

export function createTokenStore(database: Database, now: () => number, knownUnits?: ReadonlySet<string>): TokenStore {
  return {
    async create(role, unit, actor = SYSTEM_ACTOR.actor) {
      checkRoleUnit(role, unit, knownUnits);
      const token = newToken();
      const id = `tok_${randomBytes(6).toString('hex')}`;
      const at = now();
      await database.write(async (trx) => {
        await trx.insertInto('api_tokens').values({ id, hash: hashToken(token), role, unit: unit ?? null, created_at: at, revoked_at: null }).execute();
        await logCredentialChange(trx, { at, subjectKind: 'token', subject: id, action: 'create', actor, details: { role, unit: unit ?? null } });
      });
      return { id, token };
    },
    async verify(token) {
      if (!TOKEN_RE.test(token)) return undefined;
      const row = await database.db.selectFrom('api_tokens').select(['id', 'role', 'unit', 'revoked_at'])
        .where('hash', '=', hashToken(token)).executeTakeFirst();
      if (!row || row.revoked_at !== null) return undefined;
      return { tokenId: row.id, role: row.role as Role, unit: row.unit, actor: `token:${row.id}`, via: 'token' };
    },
    async revoke(id, actor = SYSTEM_ACTOR.actor) {
      const at = now();
      return database.write(async (trx) => {
        const r = await trx.updateTable('api_tokens').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) return false;
        await logCredentialChange(trx, { at, subjectKind: 'token', subject: id, action: 'revoke', actor });
        return true;
      });
    },
  };
}

/**
 * For `citysteward token create --role ROLE [--unit UNIT]`: opens the database, migrates it,
 * issues a token and closes the database. Returns the token (print it once).
 */
export async function createTokenInDatabase(db: DbOptions, role: Role, unit?: string): Promise<string> {
  checkRoleUnit(role, unit);
  const database = openDatabase(db);
  try {
    await database.migrate();
    return (await createTokenStore(database, Date.now).create(role, unit, cliActor())).token;
  } finally {
    await database.close();
  }
}

/** Revokes a token by id in a database (for the CLI). */
export async function revokeTokenInDatabase(db: DbOptions, id: string): Promise<boolean> {
  const database = openDatabase(db);
  try {
    await database.migrate();
    return await createTokenStore(database, Date.now).revoke(id, cliActor());
  } finally {
    await database.close();
  }
}
