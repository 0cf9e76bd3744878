import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';
import { checkRoleUnit, type Role } from './tokens.ts';
import { openDatabase, type Database, type DbOptions } from './db/database.ts';
import { cliActor, logCredentialChange } from './audit/credential-log.ts';
import { SYSTEM_ACTOR } from './cases/history.ts';

/**
 * People who sign in to the web application (docs/architecture.md#sign-in-and-sessions). Passwords
 * are hashed with scrypt and a per-user salt; the hash is stored as `scrypt$N$r$p$salt$hash`
 * (base64url), so the parameters can change: a sign-in under older parameters rehashes.
 * Passwords are never stored, returned or logged. Every change is appended to the credential log in
 * its transaction (cloud/audit/credential-log.ts); `actor` is who made it (default: the system).
 */

export interface ScryptParams { N: number; r: number; p: number }
/** About 60 ms and 32 MiB per hash on one core of the reference machine. */
export const SCRYPT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LEN = 32;
export const USERNAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 10;
const MAX_PASSWORD_LENGTH = 1024;

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

function parseHash(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/.exec(stored);
  if (!m) return undefined;
  return { params: { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }, salt: Buffer.from(m[4], 'base64url'), key: Buffer.from(m[5], 'base64url') };
}

/** True when `password` matches the stored hash (constant-time comparison). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h || password.length > MAX_PASSWORD_LENGTH) return false;
  const key = await scrypt(password, h.salt, h.params);
  return key.length === h.key.length && timingSafeEqual(key, h.key);
}

const sameParams = (stored: string, params: ScryptParams) => {
  const h = parseHash(stored);
  return h !== undefined && h.params.N === params.N && h.params.r === params.r && h.params.p === params.p;
};

/** 20 characters from 57 letters and digits without look-alikes (0 O 1 l I): about 116 bits, for generated passwords. */
export function generatePassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  let out = '';
  while (out.length < 20) {
    for (const b of randomBytes(32)) if (b < alphabet.length * Math.floor(256 / alphabet.length) && out.length < 20) out += alphabet[b % alphabet.length];
  }
  return out;
}

export function checkUsername(username: string): void {
  if (!USERNAME_RE.test(username)) {
    throw new CsError(CloudErrors.USER_INVALID, `user name "${username.slice(0, 80)}" is not valid: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit`);
  }
}

export function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new CsError(CloudErrors.USER_INVALID, `a password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new CsError(CloudErrors.USER_INVALID, `a password has at most ${MAX_PASSWORD_LENGTH} characters`);
}

export interface User {
  id: string;
  username: string;
  role: Role;
  unit: string | null;
  createdAt: number;
  disabledAt: number | null;
}

export interface UserStore {
  create(username: string, role: Role, unit: string | undefined, password: string, actor?: string): Promise<User>;
  get(username: string): Promise<User | undefined>;
  /** Sets a new password (enabling the account again) and revokes the user's sessions. */
  setPassword(username: string, password: string, actor?: string): Promise<void>;
  /** Disables the account and revokes its sessions; false when already disabled. */
  disable(username: string, actor?: string): Promise<boolean>;
  /** Changes the role (and the unit of a crew user); false when both are already so. */
  setRole(username: string, role: Role, unit: string | undefined, actor?: string): Promise<boolean>;
  /**
   * The user when the password is right and the account enabled; undefined otherwise. An unknown
   * user costs one scrypt run too, so the answer's time does not tell which it was.
   */
  authenticate(username: string, password: string): Promise<User | undefined>;
}

type UserRow = { id: string; username: string; role: string; unit: string | null; created_at: number; disabled_at: number | null };
const toUser = (r: UserRow): User => ({
  id: r.id, username: r.username, role: r.role as Role, unit: r.unit, createdAt: Number(r.created_at), disabledAt: r.disabled_at === null ? null : Number(r.disabled_at),
});

export function createUserStore(database: Database, now: () => number, opts: { knownUnits?: ReadonlySet<string>; params?: ScryptParams } = {}): UserStore {
  const params = opts.params ?? SCRYPT_PARAMS;
  const db = database.db;
  let dummy: Promise<string> | undefined;
  const revokeSessions = (userId: string, at: number) => database.write((trx) => trx.updateTable('sessions').set({ revoked_at: at })
    .where('user_id', '=', userId).where('revoked_at', 'is', null).execute());

  async function row(username: string) {
    return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
  }

  const checkUserRole = (role: string, unit: string | undefined) => {
    try {
      checkRoleUnit(role, unit, opts.knownUnits);
    } catch (err) {
      throw new CsError(CloudErrors.USER_INVALID, (err as Error).message.replace(/token/g, 'user'));
    }
  };

  return {
    async create(username, role, unit, password, actor = SYSTEM_ACTOR.actor) {
      checkUsername(username);
      checkUserRole(role, unit);
      checkPassword(password);
      if (await row(username)) throw new CsError(CloudErrors.USER_EXISTS, `user "${username}" exists already (citysteward user passwd to change the password)`);
      const at = now();
      const id = `usr_${randomBytes(8).toString('hex')}`;
      const password_hash = await hashPassword(password, params);
      await database.write(async (trx) => {
        await trx.insertInto('users').values({
          id, username, role, unit: unit ?? null, password_hash, created_at: at, password_changed_at: at, disabled_at: null,
        }).execute();
        await logCredentialChange(trx, { at, subjectKind: 'user', subject: username, action: 'create', actor, details: { role, unit: unit ?? null } });
      });
      return { id, username, role, unit: unit ?? null, createdAt: at, disabledAt: null };
    },
    async get(username) {
      const r = await row(username);
      return r ? toUser(r) : undefined;
    },
    async setPassword(username, password, actor = SYSTEM_ACTOR.actor) {
      checkPassword(password);
      const r = await row(username);
      if (!r) throw new CsError(CloudErrors.USER_NOT_FOUND, `no user "${username}"`);
      const at = now();
      const password_hash = await hashPassword(password, params);
      await database.write(async (trx) => {
        await trx.updateTable('users').set({ password_hash, password_changed_at: at, disabled_at: null }).where('id', '=', r.id).execute();
        await logCredentialChange(trx, { at, subjectKind: 'user', subject: username, action: 'password', actor, ...(r.disabled_at !== null ? { details: { enabled: true } } : {}) });
      });
      await revokeSessions(r.id, at);
    },
    async disable(username, actor = SYSTEM_ACTOR.actor) {
      const r = await row(username);
      if (!r) throw new CsError(CloudErrors.USER_NOT_FOUND, `no user "${username}"`);
      if (r.disabled_at !== null) return false;
      const at = now();
      await database.write(async (trx) => {
        await trx.updateTable('users').set({ disabled_at: at }).where('id', '=', r.id).execute();
        await logCredentialChange(trx, { at, subjectKind: 'user', subject: username, action: 'disable', actor });
      });
      await revokeSessions(r.id, at);
      return true;
    },
    async setRole(username, role, unit, actor = SYSTEM_ACTOR.actor) {
      checkUserRole(role, unit);
      const r = await row(username);
      if (!r) throw new CsError(CloudErrors.USER_NOT_FOUND, `no user "${username}"`);
      if (r.role === role && r.unit === (unit ?? null)) return false;
      const at = now();
      await database.write(async (trx) => {
        await trx.updateTable('users').set({ role, unit: unit ?? null }).where('id', '=', r.id).execute();
        await logCredentialChange(trx, { at, subjectKind: 'user', subject: username, action: 'role', actor, details: { from: { role: r.role, unit: r.unit }, to: { role, unit: unit ?? null } } });
      });
      return true;
    },
    async authenticate(username, password) {
      const r = USERNAME_RE.test(username) ? await row(username) : undefined;
      if (!r) {
        dummy ??= hashPassword(generatePassword(), params);
        await verifyPassword(password, await dummy);
        return undefined;
      }
      if (!await verifyPassword(password, r.password_hash) || r.disabled_at !== null) return undefined;
      if (!sameParams(r.password_hash, params)) {
        // Stored under older parameters: rehash now that the password is known.
        const password_hash = await hashPassword(password, params);
        await database.write(async (trx) => {
          await trx.updateTable('users').set({ password_hash }).where('id', '=', r.id).execute();
          await logCredentialChange(trx, { at: now(), subjectKind: 'user', subject: username, action: 'rehash', actor: SYSTEM_ACTOR.actor });
        });
      }
      return toUser(r);
    },
  };
}

export type UserCommand =
  | { kind: 'create'; username: string; role: Role; unit?: string; password: string }
  | { kind: 'passwd'; username: string; password: string }
  | { kind: 'disable'; username: string }
  | { kind: 'role'; username: string; role: Role; unit?: string };

/** For `citysteward user ...`: opens and migrates the database, runs one command, closes it. */
export async function userCommandInDatabase(dbOpts: DbOptions, cmd: UserCommand): Promise<User | boolean | undefined> {
  const database = openDatabase(dbOpts);
  try {
    await database.migrate();
    const users = createUserStore(database, Date.now);
    const actor = cliActor();
    if (cmd.kind === 'create') return await users.create(cmd.username, cmd.role, cmd.unit, cmd.password, actor);
    if (cmd.kind === 'passwd') return void await users.setPassword(cmd.username, cmd.password, actor);
    if (cmd.kind === 'role') return await users.setRole(cmd.username, cmd.role, cmd.unit, actor);
    return await users.disable(cmd.username, actor);
  } finally {
    await database.close();
  }
}
