/**
 * MQTT credentials: one per gateway (its username is its gateway id) and one per cloud
 * service. Persisted as a JSON file written atomically (temp file, fsync, rename; mode
 * 0600); passwords stored only as scrypt hashes with a random 16-byte salt and their
 * N/r/p parameters, so they can be raised later without breaking old entries.
 *
 * File format (version 1):
 *   { "version": 1, "users": [ { "username", "role", "gateway"?, "createdAt", "revokedAt"?,
 *       "rotatedAt"?, "scrypt": { "N", "r", "p", "keylen", "salt" (base64), "hash" (base64) } } ] }
 *
 * Revoked entries stay in the file (for audit) and keep their username taken.
 */
import { EventEmitter } from 'node:events';
import {
  readFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { ID_PATTERN, isValidId } from '../lib/topics.ts';
import { GatewayErrors } from './errors.ts';

/**
 * Credential roles: `gateway` writes its own namespace, `service` (the cloud) reads everything and
 * writes commands and events, `observer` only reads `cs/v1/#` (an operator's mosquitto_sub or MQTT Explorer).
 */
export const CREDENTIAL_ROLES = ['gateway', 'service', 'observer'] as const;
export type Role = (typeof CREDENTIAL_ROLES)[number];

export interface Identity {
  username: string;
  /** `anonymous` only for the development switch (gateway option allowAnonymous); never stored. */
  role: Role | 'anonymous';
  /** For role gateway: the gateway id whose namespace it owns (= username). */
  gateway?: string;
  createdAt: string;
  revokedAt?: string;
}

/** Chosen passwords shorter than this are refused; generated ones are 32 characters (192 bits). */
export const MIN_PASSWORD_LENGTH = 12;

/** scrypt cost of new hashes: Node's default (16 MiB, about 35 ms here). Stored per entry. */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

/** Gateway ids that would collide with a shared topic level (`cs/v1/events/...`). */
const RESERVED = new Set(['events']);

const ScryptHash = Type.Object({
  N: Type.Integer({ minimum: 2, maximum: 1 << 20 }),
  r: Type.Integer({ minimum: 1, maximum: 64 }),
  p: Type.Integer({ minimum: 1, maximum: 16 }),
  keylen: Type.Integer({ minimum: 16, maximum: 128 }),
  salt: Type.String({ minLength: 16 }),
  hash: Type.String({ minLength: 16 }),
}, { additionalProperties: false });

const UserRecord = Type.Object({
  username: Type.String({ pattern: ID_PATTERN }),
  role: Type.Union(CREDENTIAL_ROLES.map((r) => Type.Literal(r))),
  gateway: Type.Optional(Type.String({ pattern: ID_PATTERN })),
  createdAt: Type.String({ format: 'date-time' }),
  rotatedAt: Type.Optional(Type.String({ format: 'date-time' })),
  revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
  scrypt: ScryptHash,
}, { additionalProperties: false });

const CredentialsFile = Type.Object({
  version: Type.Literal(1),
  users: Type.Array(UserRecord),
}, { additionalProperties: false });

type UserRecord = Static<typeof UserRecord>;

export interface CredentialStoreOptions {
  /** Clock for createdAt / rotatedAt / revokedAt. */
  now?: () => Date;
}

interface StoreEvents {
  /** A credential was revoked: live connections of that username must be closed. */
  revoked: [username: string];
  /** A credential got a new password (live connections keep running). */
  rotated: [username: string];
}

export class CredentialStore extends EventEmitter<StoreEvents> {
  readonly file: string | undefined;
  private readonly users = new Map<string, UserRecord>();
  private readonly now: () => Date;
  /**
   * Successful verifications, as HMAC(process key, password): a reconnect of a known
   * client costs a microsecond instead of a scrypt run. Cleared on rotate and revoke;
   * never persisted.
   */
  private readonly verified = new Map<string, Buffer>();
  private readonly cacheKey = randomBytes(32);
  /** Hashed for unknown usernames so that they cost as much as a wrong password. */
  private dummy: UserRecord['scrypt'] | undefined;

  private constructor(file: string | undefined, opts: CredentialStoreOptions = {}) {
    super();
    this.file = file;
    this.now = opts.now ?? (() => new Date());
  }

  /** Opens the store at `file`, creating an empty one (and its directory) if missing; refuses a corrupt file. */
  static open(file: string, opts?: CredentialStoreOptions): CredentialStore {
    const store = new CredentialStore(resolve(file), opts);
    const text = readIfExists(store.file!);
    if (text === undefined) store.save();
    else store.load(text);
    return store;
  }

  /** A store that lives in memory only (tests, the demo). */
  static memory(opts?: CredentialStoreOptions): CredentialStore {
    return new CredentialStore(undefined, opts);
  }

  /** Adds a credential; generates a strong random password when none is given. */
  create(username: string, role: Role, password?: string): { identity: Identity; password: string } {
    if (typeof username !== 'string' || !isValidId(username) || RESERVED.has(username)) {
      throw new CsError(GatewayErrors.USERNAME_INVALID,
        `invalid username ${JSON.stringify(username)}: must match ${ID_PATTERN} and not be a reserved name (${[...RESERVED].join(', ')})`,
        { username });
    }
    if (!(CREDENTIAL_ROLES as readonly string[]).includes(role)) {
      throw new CsError(GatewayErrors.ROLE_INVALID, `invalid role ${JSON.stringify(role)}: must be one of ${CREDENTIAL_ROLES.join(', ')}`, { role });
    }
    if (this.users.has(username)) {
      throw new CsError(GatewayErrors.USER_EXISTS, `username ${username} already exists`, { username });
    }
    const secret = password ?? generatePassword();
    checkPassword(secret);
    const record: UserRecord = {
      username,
      role,
      ...(role === 'gateway' ? { gateway: username } : {}),
      createdAt: this.now().toISOString(),
      scrypt: hashPassword(secret),
    };
    this.users.set(username, record);
    this.saveOrUndo(() => this.users.delete(username));
    return { identity: toIdentity(record), password: secret };
  }

  /**
   * Checks a password. Resolves the identity, or undefined for an unknown username, a
   * wrong password or a revoked credential (all three indistinguishable to the caller).
   */
  async verify(username: string, password: string | Buffer): Promise<Identity | undefined> {
    if (typeof username !== 'string' || (typeof password !== 'string' && !Buffer.isBuffer(password))) return undefined;
    const secret = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
    const record = this.users.get(username);
    if (!record) {
      await scryptAsync(secret, this.dummyHash());
      return undefined;
    }
    const mac = createHmac('sha256', this.cacheKey).update(secret).digest();
    const cached = this.verified.get(username);
    let ok = cached !== undefined && timingSafeEqual(cached, mac);
    if (!ok) {
      const expected = Buffer.from(record.scrypt.hash, 'base64');
      const actual = await scryptAsync(secret, record.scrypt);
      ok = actual.length === expected.length && timingSafeEqual(actual, expected);
    }
    // The record may have been rotated or revoked while scrypt ran: judge the current one. Compare
    // its content, not its identity: a reload() of the unchanged file replaces every record object.
    const current = this.users.get(username);
    if (!ok || !current || current.scrypt.hash !== record.scrypt.hash || current.revokedAt) return undefined;
    this.verified.set(username, mac);
    return toIdentity(record);
  }

  /**
   * The identity when this exact password was verified before (since start, not rotated or
   * revoked since): a microsecond, no scrypt. Undefined otherwise; then call verify().
   */
  recall(username: string, password: string | Buffer): Identity | undefined {
    const cached = this.verified.get(username);
    const record = this.users.get(username);
    if (!cached || !record || record.revokedAt) return undefined;
    const secret = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
    const mac = createHmac('sha256', this.cacheKey).update(secret).digest();
    return timingSafeEqual(cached, mac) ? toIdentity(record) : undefined;
  }

  /** The identity of a username, revoked or not; undefined when unknown. */
  get(username: string): Identity | undefined {
    const record = this.users.get(username);
    return record ? toIdentity(record) : undefined;
  }

  /** Replaces the password of a live credential with a new generated one. */
  rotate(username: string): { password: string } {
    const old = this.live(username, 'rotate');
    const password = generatePassword();
    const record: UserRecord = { ...old, rotatedAt: this.now().toISOString(), scrypt: hashPassword(password) };
    this.users.set(username, record);
    this.saveOrUndo(() => this.users.set(username, old));
    this.verified.delete(username);
    this.emit('rotated', username);
    return { password };
  }

  /** Revokes a credential for good (idempotent); emits `revoked` so live connections get closed. */
  revoke(username: string): void {
    const old = this.users.get(username);
    if (!old) throw new CsError(GatewayErrors.USER_UNKNOWN, `unknown username ${username}`, { username });
    if (old.revokedAt) return;
    this.users.set(username, { ...old, revokedAt: this.now().toISOString() });
    this.saveOrUndo(() => this.users.set(username, old));
    this.verified.delete(username);
    this.emit('revoked', username);
  }

  /** Every identity, revoked ones included, sorted by username; never a hash. */
  list(): Identity[] {
    return [...this.users.values()].map(toIdentity).sort((a, b) => a.username.localeCompare(b.username));
  }

  /**
   * Re-reads the file (after another process, e.g. the CLI, changed it); emits `revoked`
   * for every username revoked since. Throws, keeping the current state, on a corrupt file.
   */
  reload(): void {
    if (!this.file) return;
    const text = readIfExists(this.file);
    if (text === undefined) return;
    const before = new Map(this.users);
    this.load(text);
    for (const [username, record] of this.users) {
      const prev = before.get(username);
      if (!prev || prev.scrypt.hash !== record.scrypt.hash) this.verified.delete(username);
      if (record.revokedAt && prev && !prev.revokedAt) {
        this.verified.delete(username);
        this.emit('revoked', username);
      }
    }
    for (const username of before.keys()) {
      if (!this.users.has(username)) {
        this.verified.delete(username);
        this.emit('revoked', username);
      }
    }
  }

  private live(username: string, action: string): UserRecord {
    const record = this.users.get(username);
    if (!record) throw new CsError(GatewayErrors.USER_UNKNOWN, `cannot ${action} unknown username ${username}`, { username });
    if (record.revokedAt) {
      throw new CsError(GatewayErrors.USER_REVOKED, `cannot ${action} ${username}: revoked at ${record.revokedAt}`, { username });
    }
    return record;
  }

  private dummyHash(): UserRecord['scrypt'] {
    this.dummy ??= hashPassword(generatePassword());
    return this.dummy;
  }

  private load(text: string): void {
    const file = this.file ?? '(memory)';
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw corrupt(file, `not valid JSON: ${(err as Error).message}`);
    }
    const result = check(CredentialsFile, json);
    if (!result.ok) {
      throw corrupt(file, result.problems.map((p) => `${p.key}: ${p.message}`).join('; '));
    }
    const users = new Map<string, UserRecord>();
    for (const [i, u] of result.value.users.entries()) {
      if (users.has(u.username)) throw corrupt(file, `users[${i}].username: duplicate ${u.username}`);
      if (u.role === 'gateway' && u.gateway !== u.username) {
        throw corrupt(file, `users[${i}].gateway: must equal the username for role gateway`);
      }
      if (u.role !== 'gateway' && u.gateway !== undefined) throw corrupt(file, `users[${i}].gateway: not allowed for role ${u.role}`);
      if (Buffer.from(u.scrypt.salt, 'base64').length < 16) throw corrupt(file, `users[${i}].scrypt.salt: shorter than 16 bytes`);
      if (Buffer.from(u.scrypt.hash, 'base64').length !== u.scrypt.keylen) {
        throw corrupt(file, `users[${i}].scrypt.hash: length differs from keylen`);
      }
      users.set(u.username, u);
    }
    this.users.clear();
    for (const [k, v] of users) this.users.set(k, v);
  }

  /** Persists; on failure restores the previous in-memory state and throws. */
  private saveOrUndo(undo: () => void): void {
    try {
      this.save();
    } catch (err) {
      undo();
      throw err;
    }
  }

  private save(): void {
    if (!this.file) return;
    const body = JSON.stringify({ version: 1, users: [...this.users.values()] }, null, 2) + '\n';
    writeAtomic(this.file, body);
  }
}

/** The store of a data directory: `${dataDir}/credentials.json` (created empty if missing). */
export function openCredentialStore(dataDir: string, opts?: CredentialStoreOptions): CredentialStore {
  return CredentialStore.open(join(dataDir, 'credentials.json'), opts);
}

function toIdentity(r: UserRecord): Identity {
  const id: Identity = { username: r.username, role: r.role, createdAt: r.createdAt };
  if (r.gateway !== undefined) id.gateway = r.gateway;
  if (r.revokedAt !== undefined) id.revokedAt = r.revokedAt;
  return id;
}

function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

function checkPassword(password: unknown): void {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new CsError(GatewayErrors.PASSWORD_WEAK, `password too short: at least ${MIN_PASSWORD_LENGTH} characters`);
  }
}

function hashPassword(password: string): UserRecord['scrypt'] {
  const { N, r, p, keylen } = SCRYPT_PARAMS;
  const salt = randomBytes(16);
  // Creation and rotation are rare administrative acts: the synchronous API is fine there.
  const hash = scryptSync(Buffer.from(password, 'utf8'), salt, keylen, { N, r, p, maxmem: maxmem(SCRYPT_PARAMS) });
  return { N, r, p, keylen, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

function maxmem(params: { N: number; r: number; p: number }): number {
  return 128 * params.N * params.r * params.p + 64 * 1024 * 1024;
}

function scryptAsync(secret: Buffer, params: UserRecord['scrypt']): Promise<Buffer> {
  const { N, r, p, keylen } = params;
  return new Promise((resolveHash, reject) => {
    scrypt(secret, Buffer.from(params.salt, 'base64'), keylen, { N, r, p, maxmem: maxmem(params) }, (err, key) => {
      if (err) reject(err);
      else resolveHash(key);
    });
  });
}

function corrupt(file: string, problem: string): CsError {
  return new CsError(
    GatewayErrors.CREDENTIALS_CORRUPT,
    `credentials file ${file} is corrupt (${problem}); refusing to use or overwrite it: restore it from a backup or move it away`,
    { file, problem },
  );
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CsError(GatewayErrors.CREDENTIALS_READ, `cannot read credentials file ${file}: ${(err as Error).message}`, { file });
  }
}

/** Writes `file` atomically (lib/atomic-file.ts), mode 0600 in a 0700 directory. */
function writeAtomic(file: string, body: string): void {
  try {
    writeFileAtomic(file, body, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new CsError(GatewayErrors.CREDENTIALS_WRITE, `cannot write credentials file ${file}: ${(err as Error).message}`, { file });
  }
}
