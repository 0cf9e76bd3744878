import { createHash, randomBytes } from 'node:crypto';
import { openDatabase, type Database, type DbOptions } from '../db/database.ts';
import { cliActor, logCredentialChange } from '../audit/credential-log.ts';
import { SYSTEM_ACTOR } from '../cases/history.ts';

/**
 * Client apps' Open311 API keys: `o311_` + 32 random bytes (base64url), shown once; only the sha256
 * hex is stored. An admin creates, lists and revokes them (`citysteward open311-key`); both changes are
 * appended to the credential log in their transaction (cloud/audit/credential-log.ts).
 */

const KEY_RE = /^o311_[A-Za-z0-9_-]{43}$/;
const hashKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

export interface Open311Key {
  id: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface KeyStore {
  /** A new key for a client app; the key is returned once, in clear. */
  create(name: string): Promise<{ id: string; key: string }>;
  /** The key's id when it is valid and not revoked. */
  verify(key: string): Promise<string | undefined>;
  revoke(id: string): Promise<boolean>;
  list(): Promise<Open311Key[]>;
}

export function createKeyStore(database: Database, now: () => number, actor: string = SYSTEM_ACTOR.actor): KeyStore {
  return {
    async create(name) {
      const clean = name.trim();
      if (!clean || clean.length > 200) throw new Error('a key needs a name (1 to 200 characters): the client app it is for');
      const key = `o311_${randomBytes(32).toString('base64url')}`;
      const id = `o3k_${randomBytes(6).toString('hex')}`;
      const at = now();
      await database.write(async (trx) => {
        await trx.insertInto('open311_keys').values({ id, name: clean, hash: hashKey(key), created_at: at, revoked_at: null }).execute();
        await logCredentialChange(trx, { at, subjectKind: 'open311-key', subject: id, action: 'create', actor, details: { name: clean } });
      });
      return { id, key };
    },
    async verify(key) {
      if (!KEY_RE.test(key)) return undefined;
      const row = await database.db.selectFrom('open311_keys').select(['id', 'revoked_at']).where('hash', '=', hashKey(key)).executeTakeFirst();
      return row && row.revoked_at === null ? row.id : undefined;
    },
    async revoke(id) {
      const at = now();
      return database.write(async (trx) => {
        const r = await trx.updateTable('open311_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) return false;
        await logCredentialChange(trx, { at, subjectKind: 'open311-key', subject: id, action: 'revoke', actor });
        return true;
      });
    },
    async list() {
      const rows = await database.db.selectFrom('open311_keys').select(['id', 'name', 'created_at', 'revoked_at']).orderBy('created_at').orderBy('id').execute();
      const iso = (t: number | null) => (t == null ? null : new Date(Number(t)).toISOString());
      return rows.map((r) => ({ id: r.id, name: r.name, createdAt: iso(r.created_at)!, revokedAt: iso(r.revoked_at) }));
    },
  };
}

/** For the CLI: opens and migrates the database, runs `fn` on the key store, closes the database. */
export async function withKeyStore<T>(db: DbOptions, fn: (keys: KeyStore) => Promise<T>): Promise<T> {
  const database = openDatabase(db);
  try {
    await database.migrate();
    return await fn(createKeyStore(database, Date.now, cliActor()));
  } finally {
    await database.close();
  }
}
