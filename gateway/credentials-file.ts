/** The credentials file (credentials.ts): its schema, parsing, reading and writing, with the store's error codes. */
import { readFileSync, statSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CsError } from '../lib/errors.ts';
import { check } from '../lib/schema.ts';
import { ID_PATTERN } from '../lib/topics.ts';
import { GatewayErrors } from './errors.ts';
import { ScryptHash, Sha256Hash, type StoredSecret } from './secret-hash.ts';

/**
 * Credential roles: `gateway` writes its own namespace, `service` (the cloud) reads everything and
 * writes commands and events, `observer` only reads `cs/v1/#` (an operator's mosquitto_sub or MQTT Explorer),
 * `integrator` (Node-RED, `citysteward flows`) only reads the cloud's events and the readings.
 */
export const CREDENTIAL_ROLES = ['gateway', 'service', 'observer', 'integrator'] as const;
export type Role = (typeof CREDENTIAL_ROLES)[number];

const UserRecordSchema = Type.Object({
  username: Type.String({ pattern: ID_PATTERN }),
  role: Type.Union(CREDENTIAL_ROLES.map((r) => Type.Literal(r))),
  gateway: Type.Optional(Type.String({ pattern: ID_PATTERN })),
  createdAt: Type.String({ format: 'date-time' }),
  rotatedAt: Type.Optional(Type.String({ format: 'date-time' })),
  revokedAt: Type.Optional(Type.String({ format: 'date-time' })),
  scrypt: Type.Optional(ScryptHash),
  sha256: Type.Optional(Sha256Hash),
}, { additionalProperties: false });

const CredentialsFile = Type.Object({
  version: Type.Literal(1),
  logHead: Type.Optional(Type.String({ description: 'the hash of the last line of credentials-log.jsonl (gateway/credential-log.ts)' })),
  users: Type.Array(UserRecordSchema),
}, { additionalProperties: false });

export type UserRecord = Static<typeof UserRecordSchema> & StoredSecret;

/** The users and log head of a credentials file's text; throws CREDENTIALS_CORRUPT naming the first problem. */
export function parseCredentialsFile(text: string, file: string): { users: Map<string, UserRecord>; logHead?: string } {
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
    if ((u.scrypt === undefined) === (u.sha256 === undefined)) throw corrupt(file, `users[${i}]: needs exactly one of scrypt and sha256`);
    if (u.scrypt && Buffer.from(u.scrypt.salt, 'base64').length < 16) throw corrupt(file, `users[${i}].scrypt.salt: shorter than 16 bytes`);
    if (u.scrypt && Buffer.from(u.scrypt.hash, 'base64').length !== u.scrypt.keylen) {
      throw corrupt(file, `users[${i}].scrypt.hash: length differs from keylen`);
    }
    if (u.sha256 && Buffer.from(u.sha256.hash, 'base64').length !== 32) throw corrupt(file, `users[${i}].sha256.hash: not 32 bytes`);
    users.set(u.username, u as UserRecord);
  }
  return { users, logHead: result.value.logHead };
}

/**
 * What identifies one version of the file without reading it: inode, size and modification time
 * (an atomic write renames a new inode into place). Undefined for no file or a missing one.
 */
export function fileStamp(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    const s = statSync(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch {
    return undefined;
  }
}

export function corrupt(file: string, problem: string): CsError {
  return new CsError(
    GatewayErrors.CREDENTIALS_CORRUPT,
    `credentials file ${file} is corrupt (${problem}); refusing to use or overwrite it: restore it from a backup or move it away`,
    { file, problem },
  );
}

export function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CsError(GatewayErrors.CREDENTIALS_READ, `cannot read credentials file ${file}: ${(err as Error).message}`, { file });
  }
}

/** Writes `file` atomically (lib/atomic-file.ts), mode 0600 in a 0700 directory. */
export function writeAtomic(file: string, body: string): void {
  try {
    writeFileAtomic(file, body, { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new CsError(GatewayErrors.CREDENTIALS_WRITE, `cannot write credentials file ${file}: ${(err as Error).message}`, { file });
  }
}
