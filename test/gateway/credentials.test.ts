import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CsError } from '../../lib/errors.ts';
import { CredentialStore, openCredentialStore } from '../../gateway/credentials.ts';
import { GatewayErrors } from '../../gateway/errors.ts';

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cs-cred-'));
  file = join(dir, 'credentials.json');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as CsError).code;
  }
  return undefined;
}

describe('CredentialStore', () => {
  it('creates an empty store file with mode 0600 when none exists', () => {
    const store = openCredentialStore(dir);
    expect(store.list()).toEqual([]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, users: [] });
  });

  it('generates a strong password and verifies it, and refuses a wrong one', async () => {
    const store = CredentialStore.memory();
    const { identity, password } = store.create('gw1', 'gateway');
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(identity).toMatchObject({ username: 'gw1', role: 'gateway', gateway: 'gw1' });
    expect(await store.verify('gw1', password)).toEqual(identity);
    expect(await store.verify('gw1', Buffer.from(password))).toEqual(identity);
    expect(await store.verify('gw1', password + 'x')).toBeUndefined();
    expect(await store.verify('gw1', '')).toBeUndefined();
    expect(await store.verify('nobody', password)).toBeUndefined();
  });

  it('never stores a password in clear: a generated secret as SHA-256, a chosen one as a salted scrypt hash with its parameters', () => {
    const store = openCredentialStore(dir);
    const a = store.create('gw1', 'gateway');
    const b = store.create('cloud', 'service', 'a chosen passphrase');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(a.password);
    expect(text).not.toContain('a chosen passphrase');
    expect(text).not.toContain(Buffer.from('a chosen passphrase').toString('base64'));
    const users = JSON.parse(text).users;
    expect(users).toHaveLength(2);
    expect(Buffer.from(users[0].sha256.hash, 'base64')).toHaveLength(32);
    expect(users[0]).not.toHaveProperty('scrypt');
    expect(users[1].scrypt).toMatchObject({ N: 16384, r: 8, p: 1, keylen: 32 });
    expect(Buffer.from(users[1].scrypt.salt, 'base64')).toHaveLength(16);
    for (const u of users) expect(u).not.toHaveProperty('password');
    expect(b.identity).not.toHaveProperty('gateway');
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('accepts a password checked while the unchanged file is reloaded (regression: a fresh credential was refused for its first second)', async () => {
    const store = openCredentialStore(dir);
    const { password } = store.create('gw1', 'gateway');
    const pending = store.verify('gw1', password);
    store.reload(); // what the gateway's file watcher does right after an admin-API create
    expect(await pending).toMatchObject({ username: 'gw1' });
  });

  it('keeps credentials across a reopen of the file', async () => {
    const { password } = openCredentialStore(dir).create('gw1', 'gateway');
    const again = openCredentialStore(dir);
    expect(again.list().map((i) => i.username)).toEqual(['gw1']);
    expect(await again.verify('gw1', password)).toMatchObject({ username: 'gw1' });
  });

  it('leaves no temp file behind after writes', () => {
    const store = openCredentialStore(dir);
    store.create('gw1', 'gateway');
    store.rotate('gw1');
    store.revoke('gw1');
    expect(readdirSync(dir).sort()).toEqual(['credentials-log.jsonl', 'credentials.json']);
  });

  it('refuses duplicates, invalid or reserved usernames, unknown roles and short passwords', () => {
    const store = CredentialStore.memory();
    store.create('gw1', 'gateway');
    expect(codeOf(() => store.create('gw1', 'service'))).toBe(GatewayErrors.USER_EXISTS);
    expect(codeOf(() => store.create('a/b', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('a+', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('#', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('gw:1', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('events', 'gateway'))).toBe(GatewayErrors.USERNAME_INVALID);
    expect(codeOf(() => store.create('gw2', 'admin' as 'gateway'))).toBe(GatewayErrors.ROLE_INVALID);
    expect(codeOf(() => store.create('gw2', 'gateway', 'short'))).toBe(GatewayErrors.PASSWORD_WEAK);
    expect(store.list().map((i) => i.username)).toEqual(['gw1']);
  });

  it('rotates a password: the old one stops working, the new one works', async () => {
    const store = CredentialStore.memory();
    const { password: old } = store.create('gw1', 'gateway');
    expect(await store.verify('gw1', old)).toBeDefined(); // fills the verification cache
    const { password } = store.rotate('gw1');
    expect(password).not.toBe(old);
    expect(await store.verify('gw1', old)).toBeUndefined();
    expect(await store.verify('gw1', password)).toBeDefined();
    expect(codeOf(() => store.rotate('nobody'))).toBe(GatewayErrors.USER_UNKNOWN);
  });

  it('revokes a credential: verify fails, the entry stays listed and the event fires once', async () => {
    const store = CredentialStore.memory({ now: () => new Date('2026-09-14T06:00:00.000Z') });
    const { password } = store.create('gw1', 'gateway');
    expect(await store.verify('gw1', password)).toBeDefined();
    const revoked: string[] = [];
    store.on('revoked', (u) => revoked.push(u));
    store.revoke('gw1');
    store.revoke('gw1');
    expect(revoked).toEqual(['gw1']);
    expect(await store.verify('gw1', password)).toBeUndefined();
    expect(store.list()).toEqual([{ username: 'gw1', role: 'gateway', gateway: 'gw1', createdAt: '2026-09-14T06:00:00.000Z', revokedAt: '2026-09-14T06:00:00.000Z' }]);
    expect(codeOf(() => store.rotate('gw1'))).toBe(GatewayErrors.USER_REVOKED);
    expect(codeOf(() => store.revoke('nobody'))).toBe(GatewayErrors.USER_UNKNOWN);
  });

  it('refuses a password checked while it was being revoked', async () => {
    const store = CredentialStore.memory();
    const { password } = store.create('gw1', 'gateway');
    const pending = store.verify('gw1', password);
    store.revoke('gw1');
    expect(await pending).toBeUndefined();
  });

  it.each([
    ['not JSON', '{"version": 1, "users": [', /not valid JSON/],
    ['a wrong version', '{"version": 2, "users": []}', /version/],
    ['a user without a hash', '{"version": 1, "users": [{"username": "gw1", "role": "gateway", "gateway": "gw1", "createdAt": "2026-09-14T06:00:00.000Z"}]}', /users\[0\]/],
    ['an invalid username', JSON.stringify({ version: 1, users: [{ username: 'a/b', role: 'gateway', gateway: 'a/b', createdAt: '2026-09-14T06:00:00.000Z', scrypt: { N: 16384, r: 8, p: 1, keylen: 32, salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: Buffer.alloc(32).toString('base64') } }] }), /users\[0\]\.username/],
    ['a gateway owning another namespace', JSON.stringify({ version: 1, users: [{ username: 'gw1', role: 'gateway', gateway: 'gw2', createdAt: '2026-09-14T06:00:00.000Z', scrypt: { N: 16384, r: 8, p: 1, keylen: 32, salt: 'AAAAAAAAAAAAAAAAAAAAAA==', hash: Buffer.alloc(32).toString('base64') } }] }), /users\[0\]\.gateway/],
    ['an empty file', '', /not valid JSON/],
  ])('refuses a corrupt file (%s) with a clear error and leaves it untouched', (_what, text, problem) => {
    writeFileSync(file, text);
    let err: CsError | undefined;
    try {
      openCredentialStore(dir);
    } catch (e) {
      err = e as CsError;
    }
    expect(err).toBeInstanceOf(CsError);
    expect(err!.code).toBe(GatewayErrors.CREDENTIALS_CORRUPT);
    expect(err!.message).toContain(file);
    expect(err!.message).toMatch(problem);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('reloads changes made by another process and reports newly revoked usernames', async () => {
    const mine = openCredentialStore(dir);
    mine.create('gw1', 'gateway');
    const theirs = openCredentialStore(dir); // e.g. the CLI in another process
    const { password } = theirs.create('gw2', 'gateway');
    theirs.revoke('gw1');
    const revoked: string[] = [];
    mine.on('revoked', (u) => revoked.push(u));
    mine.reload();
    expect(revoked).toEqual(['gw1']);
    expect(await mine.verify('gw2', password)).toMatchObject({ username: 'gw2' });
  });
});
