/**
 * MQTT credentials: one per gateway (its username is its gateway id) and one per cloud
 * service. Persisted as a JSON file written atomically (temp file, fsync, rename; mode
 * 0600); secrets stored only hashed (secret-hash.ts): machine secrets as SHA-256, secrets
 * chosen by people as scrypt with a random salt and their N/r/p parameters. A scrypt entry
 * whose secret proves machine-strength is rewritten as SHA-256 after its next successful
 * login (docs/architecture.md#machine-credentials).
 *
 * File format (version 1; `logHead`: gateway/credential-log.ts):
 *   { "version": 1, "logHead"?, "users": [ { "username", "role", "gateway"?, "createdAt", "revokedAt"?,
 *       "rotatedAt"?, and either "sha256": { "hash" (base64) }
 *       or "scrypt": { "N", "r", "p", "keylen", "salt" (base64), "hash" (base64) } } ] }
 *
 * Revoked entries stay in the file (for audit) and keep their username taken.
 */
import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  fingerprint, generateSecret, hashSecret, isMachineSecret, matches, matchesFast, sha256Hash,
} from './secret-hash.ts';
import { CREDENTIAL_ROLES, fileStamp, parseCredentialsFile, readIfExists, writeAtomic, type Role, type UserRecord } from './credentials-file.ts';
import { checkImport, importRefused, type ImportEntry, type ImportProblem } from './credential-import.ts';
import { planLog, type MachineCredentialChange } from './credential-log.ts';
import { cliActor } from '../lib/cli-actor.ts';
import { CsError } from '../lib/errors.ts';
import { ID_PATTERN, isValidId } from '../lib/topics.ts';
import { GatewayErrors } from './errors.ts';

export { CREDENTIAL_ROLES, type Role } from './credentials-file.ts';

export interface Identity {
  username: string;
  /** `anonymous` only for the development switch (gateway option allowAnonymous); never stored. */
  role: Role | 'anonymous';
  /** For role gateway: the gateway id whose namespace it owns (= username). */
  gateway?: string;
  createdAt: string;
  revokedAt?: string;
}

/** Chosen passwords shorter than this are refused; generated ones are 43 characters (256 bits). */
export const MIN_PASSWORD_LENGTH = 12;

export { SCRYPT_PARAMS } from './secret-hash.ts';

/** Gateway ids that would collide with a shared topic level (`cs/v1/events/...`). */
const RESERVED = new Set(['events']);


export interface CredentialStoreOptions {
  /** Clock for createdAt / rotatedAt / revokedAt. */
  now?: () => Date;
  /** Who makes the changes, for the credential log (default: `cli:` and the operating-system user). */
  actor?: string;
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
  /** Compared for unknown usernames, so that they take the path of a wrong secret. */
  private readonly dummy = sha256Hash(randomBytes(32));
  /** Entries rewritten as SHA-256 after a login, not yet saved: username -> the fingerprint they replaced. */
  private readonly migrated = new Map<string, string>();
  private migrationTimer: NodeJS.Timeout | undefined;
  private logHead: string | undefined;
  private readonly actor: string;
  /** The file's version this store last read or wrote (credentials-file.ts fileStamp). */
  private stamp: string | undefined;

  private constructor(file: string | undefined, opts: CredentialStoreOptions = {}) {
    super();
    this.file = file;
    this.now = opts.now ?? (() => new Date());
    this.actor = opts.actor ?? cliActor();
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
    const secret = password ?? generateSecret();
    checkPassword(secret);
    const record = this.newRecord(username, role, secret);
    this.users.set(username, record);
    this.saveOrUndo(() => this.users.delete(username), [{ action: 'create', username, role }]);
    return { identity: toIdentity(record), password: secret };
  }

  /**
   * Adds many credentials in one write (`citysteward credential import`): all or nothing. Every
   * entry is checked first; any problem refuses the whole batch with every bad line named.
   * Returns the secrets generated for entries without one (to be shown once).
   */
  importMany(batch: { entries: ImportEntry[]; problems?: ImportProblem[] }): { created: number; generated: { username: string; password: string }[] } {
    const { entries } = batch;
    const problems = [...(batch.problems ?? []), ...checkImport(entries, (u) => this.users.has(u), RESERVED)].sort((a, b) => a.line - b.line);
    if (problems.length) throw importRefused(problems);
    const generated: { username: string; password: string }[] = [];
    const added: string[] = [];
    for (const e of entries) {
      const secret = e.password ?? generateSecret();
      if (e.password === undefined) generated.push({ username: e.username, password: secret });
      this.users.set(e.username, this.newRecord(e.username, e.role, secret));
      added.push(e.username);
    }
    this.saveOrUndo(() => added.forEach((u) => this.users.delete(u)), entries.map((e) => ({ action: 'import', username: e.username, role: e.role })));
    return { created: added.length, generated };
  }

  private newRecord(username: string, role: Role, secret: string): UserRecord {
    return {
      username,
      role,
      ...(role === 'gateway' ? { gateway: username } : {}),
      createdAt: this.now().toISOString(),
      ...hashSecret(secret),
    };
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
      matchesFast(secret, this.dummy);
      return undefined;
    }
    // SHA-256 entries take a microsecond and need no cache; scrypt ones are cached per process.
    const mac = record.sha256 ? undefined : createHmac('sha256', this.cacheKey).update(secret).digest();
    const cached = this.verified.get(username);
    const ok = record.sha256 ? await Promise.resolve(matchesFast(secret, record.sha256))
      : (cached !== undefined && timingSafeEqual(cached, mac!)) || await matches(secret, record);
    // The record may have been rotated or revoked while scrypt ran: judge the current one. Compare
    // its content, not its identity: a reload() of the unchanged file replaces every record object.
    const current = this.users.get(username);
    if (!ok || !current || fingerprint(current) !== fingerprint(record) || current.revokedAt) return undefined;
    if (current.sha256) return toIdentity(current);
    if (isMachineSecret(secret)) this.migrate(current, secret);
    else this.verified.set(username, mac!);
    return toIdentity(record);
  }

  /** Rewrites a scrypt entry as SHA-256 once its machine-strength secret proved right; saved in batches. */
  private migrate(record: UserRecord, secret: Buffer): void {
    const { scrypt: _old, ...rest } = record;
    this.users.set(record.username, { ...rest, sha256: sha256Hash(secret) });
    this.verified.delete(record.username);
    if (!this.file) return;
    if (!this.migrated.has(record.username)) this.migrated.set(record.username, fingerprint(record));
    // A reconnect storm migrates thousands: one write for all of them, not one each.
    this.migrationTimer ??= setTimeout(() => this.saveMigrations(), 200).unref();
  }

  /**
   * Writes pending migrations: re-reads the file first (another process may have changed it), then
   * applies each one whose entry is still the one verified, and saves. On any trouble the
   * entries simply stay scrypt on disk and migrate again at their next login.
   */
  saveMigrations(): void {
    clearTimeout(this.migrationTimer);
    this.migrationTimer = undefined;
    if (!this.migrated.size) return;
    const mine = new Map([...this.migrated].map(([u, from]) => [u, { from, to: this.users.get(u) }]));
    this.migrated.clear();
    try {
      this.reload();
      let changed = false;
      for (const [username, { from, to }] of mine) {
        const onDisk = this.users.get(username);
        if (!to?.sha256 || !onDisk || onDisk.revokedAt || fingerprint(onDisk) !== from) continue;
        this.users.set(username, { ...onDisk, scrypt: undefined, sha256: to.sha256 } as UserRecord);
        changed = true;
      }
      if (changed) this.save();
    } catch {
      // Kept in memory as SHA-256; the file keeps scrypt until a later migration succeeds.
    }
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
    const password = generateSecret();
    const { scrypt: _s, sha256: _h, ...rest } = old;
    const record = { ...rest, rotatedAt: this.now().toISOString(), ...hashSecret(password) } as UserRecord;
    this.users.set(username, record);
    this.saveOrUndo(() => this.users.set(username, old), [{ action: 'rotate', username, role: old.role }]);
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
    this.saveOrUndo(() => this.users.set(username, old), [{ action: 'revoke', username, role: old.role }]);
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
      if (!prev || fingerprint(prev) !== fingerprint(record)) this.verified.delete(username);
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

  /**
   * Reloads the file when another process changed it since this store last read or wrote it (one
   * stat; no read when unchanged): a credential another broker of a cluster created or rotated a
   * moment ago is known here at once, before the file watcher's reload (revocation.ts). True when it
   * reloaded; false when unchanged, in memory, or the file cannot be used (the current state is kept).
   */
  refresh(): boolean {
    if (!this.file) return false;
    const stamp = fileStamp(this.file);
    if (stamp === undefined || stamp === this.stamp) return false;
    try {
      this.reload();
      return true;
    } catch {
      this.stamp = stamp; // not read again until it changes once more; the watcher logs the problem
      return false;
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

  private load(text: string): void {
    const parsed = parseCredentialsFile(text, this.file ?? '(memory)');
    this.users.clear();
    for (const [k, v] of parsed.users) this.users.set(k, v);
    this.logHead = parsed.logHead;
    this.stamp = fileStamp(this.file);
  }

  /** Persists; on failure restores the previous in-memory state and throws. */
  private saveOrUndo(undo: () => void, changes: MachineCredentialChange[]): void {
    try {
      this.save(changes);
    } catch (err) {
      undo();
      throw err;
    }
  }

  /** Writes the file; with changes, their log lines' head in it first, then the lines (gateway/credential-log.ts). */
  private save(changes: MachineCredentialChange[] = []): void {
    if (!this.file) return;
    const log = changes.length ? planLog(this.file, changes, this.actor, this.now()) : undefined;
    const logHead = log?.head ?? this.logHead;
    writeAtomic(this.file, JSON.stringify({ version: 1, ...(logHead ? { logHead } : {}), users: [...this.users.values()] }, null, 2) + '\n');
    this.stamp = fileStamp(this.file);
    this.logHead = logHead;
    log?.commit();
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

function checkPassword(password: unknown): void {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new CsError(GatewayErrors.PASSWORD_WEAK, `password too short: at least ${MIN_PASSWORD_LENGTH} characters`);
  }
}
