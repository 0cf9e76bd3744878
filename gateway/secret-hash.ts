/**
 * How the credential store hashes secrets (docs/architecture.md#machine-credentials):
 *
 * - `sha256`: secrets we generate (256 random bits) and other machine-strength secrets
 *   (at least 32 base64url characters mixing cases and digits: 192 bits or more if random).
 *   A slow hash adds nothing to a secret nobody can guess: one SHA-256, a microsecond.
 * - `scrypt` (N 16384): secrets chosen by people, which may be guessable; 35 to 45 ms each.
 * Both are compared in constant time (equal-length digests, timingSafeEqual).
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';

/** scrypt cost of new hashes: Node's default (16 MiB, about 35 ms here). Stored per entry. */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

export const ScryptHash = Type.Object({
  N: Type.Integer({ minimum: 2, maximum: 1 << 20 }),
  r: Type.Integer({ minimum: 1, maximum: 64 }),
  p: Type.Integer({ minimum: 1, maximum: 16 }),
  keylen: Type.Integer({ minimum: 16, maximum: 128 }),
  salt: Type.String({ minLength: 16 }),
  hash: Type.String({ minLength: 16 }),
}, { additionalProperties: false });
export type ScryptHash = Static<typeof ScryptHash>;

/** SHA-256 of a machine secret, base64 (32 bytes). */
export const Sha256Hash = Type.Object({ hash: Type.String({ minLength: 43, maxLength: 44 }) }, { additionalProperties: false });
export type Sha256Hash = Static<typeof Sha256Hash>;

/** A stored secret: exactly one of the two. */
export type StoredSecret = { scrypt: ScryptHash; sha256?: undefined } | { sha256: Sha256Hash; scrypt?: undefined };

/** A new secret: 32 random bytes, 43 base64url characters (256 bits). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Whether a secret is strong enough for the fast hash: 32 or more base64url characters with
 * lower case, upper case and digits (our generated secrets, old ones of 24 bytes included).
 * A random one carries 192 bits or more; a person's passphrase rarely looks like this.
 */
export function isMachineSecret(secret: string | Buffer): boolean {
  const s = typeof secret === 'string' ? secret : secret.toString('latin1');
  return s.length >= 32 && /^[A-Za-z0-9_-]+$/.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s) && /[0-9]/.test(s);
}

/** The hash a new secret is stored as: SHA-256 for machine secrets, scrypt for the rest. */
export function hashSecret(secret: string): StoredSecret {
  return isMachineSecret(secret) ? { sha256: sha256Hash(secret) } : { scrypt: scryptHash(secret) };
}

export function sha256Hash(secret: string | Buffer): Sha256Hash {
  return { hash: createHash('sha256').update(secret).digest('base64') };
}

function scryptHash(secret: string): ScryptHash {
  const { N, r, p, keylen } = SCRYPT_PARAMS;
  const salt = randomBytes(16);
  // Creation and rotation are rare administrative acts: the synchronous API is fine there.
  const hash = scryptSync(Buffer.from(secret, 'utf8'), salt, keylen, { N, r, p, maxmem: maxmem(SCRYPT_PARAMS) });
  return { N, r, p, keylen, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** The stored hash as a string, to tell whether an entry changed (rotated) meanwhile. */
export function fingerprint(s: StoredSecret): string {
  return s.sha256 ? `sha256:${s.sha256.hash}` : `scrypt:${s.scrypt!.hash}`;
}

/** Checks `secret` against a stored hash in constant time (for its length); scrypt off the main thread. */
export async function matches(secret: Buffer, stored: StoredSecret): Promise<boolean> {
  if (stored.sha256) return matchesFast(secret, stored.sha256);
  const expected = Buffer.from(stored.scrypt!.hash, 'base64');
  const actual = await scryptAsync(secret, stored.scrypt!);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function matchesFast(secret: Buffer, stored: Sha256Hash): boolean {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = createHash('sha256').update(secret).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A scrypt run on a throwaway hash: an unknown username costs as much as a wrong password. */
export function scryptAsync(secret: Buffer, params: ScryptHash): Promise<Buffer> {
  const { N, r, p, keylen } = params;
  return new Promise((resolveHash, reject) => {
    scrypt(secret, Buffer.from(params.salt, 'base64'), keylen, { N, r, p, maxmem: maxmem(params) }, (err, key) => {
      if (err) reject(err);
      else resolveHash(key);
    });
  });
}

function maxmem(params: { N: number; r: number; p: number }): number {
  return 128 * params.N * params.r * params.p + 64 * 1024 * 1024;
}
