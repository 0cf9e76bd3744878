/**
 * Machine credentials (docs/architecture.md#machine-credentials): secrets we generate are
 * checked with one SHA-256, chosen ones keep scrypt, old scrypt entries of machine secrets
 * turn into SHA-256 at their next login, and `credential import` adds thousands at once.
 */
import * as crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CredentialStore, openCredentialStore } from '../../gateway/credentials.ts';
import { GatewayErrors } from '../../gateway/errors.ts';
import { runCliOnce } from '../helpers/process.ts';

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'cs-machine-cred-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const usersIn = (): Array<Record<string, any>> => JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')).users;

/** A version-1 entry as stores before this change wrote it: scrypt of the secret (a small N, for speed). */
function oldScryptEntry(username: string, secret: string): object {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(secret, salt, 32, { N: 1024, r: 8, p: 1 });
  return { username, role: 'gateway', gateway: username, createdAt: '2026-01-01T00:00:00.000Z',
    scrypt: { N: 1024, r: 8, p: 1, keylen: 32, salt: salt.toString('base64'), hash: hash.toString('base64') } };
}

describe('machine credentials', () => {
  it('verifies a generated 256-bit secret with one fast hash: 2,000 first logins in well under a second', async () => {
    const store = CredentialStore.memory();
    const { password } = store.create('gw1', 'gateway');
    expect(Buffer.from(password, 'base64url')).toHaveLength(32);
    const started = performance.now();
    for (let i = 0; i < 2000; i++) expect(await store.verify('gw1', password)).toMatchObject({ username: 'gw1' });
    expect(performance.now() - started).toBeLessThan(1000); // scrypt would take 80 s
  });

  it('refuses a wrong secret through a constant-time comparison of equal-length digests', async () => {
    const store = CredentialStore.memory();
    const { password } = store.create('gw1', 'gateway');
    const spy = vi.mocked(crypto.timingSafeEqual);
    for (const wrong of [password.slice(0, -1) + (password.endsWith('A') ? 'B' : 'A'), password.slice(0, 10), 'x' + password, '']) {
      spy.mockClear();
      expect(await store.verify('gw1', wrong)).toBeUndefined();
      expect(spy).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0] as [Buffer, Buffer];
      expect(a.length).toBe(32);
      expect(b.length).toBe(32);
    }
  });

  it('keeps scrypt for a secret chosen by a person, such as an observer passphrase', async () => {
    const store = openCredentialStore(dir);
    store.create('ops-viewer', 'observer', 'correct horse battery staple');
    expect(usersIn()[0].scrypt).toMatchObject({ N: 16384 });
    expect(await store.verify('ops-viewer', 'correct horse battery staple')).toMatchObject({ role: 'observer' });
    store.saveMigrations();
    expect(usersIn()[0]).not.toHaveProperty('sha256'); // a chosen secret is never migrated
  });

  it('rewrites an old scrypt entry of a machine secret as SHA-256 after its next successful login, in one write', async () => {
    const secrets = ['gw1', 'gw2'].map(() => crypto.randomBytes(24).toString('base64url'));
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ version: 1, users: [oldScryptEntry('gw1', secrets[0]), oldScryptEntry('gw2', secrets[1])] }));
    const store = openCredentialStore(dir);
    expect(await store.verify('gw1', 'wrong-secret-of-some-length')).toBeUndefined();
    expect(await store.verify('gw1', secrets[0])).toMatchObject({ username: 'gw1' });
    expect(await store.verify('gw2', secrets[1])).toMatchObject({ username: 'gw2' });
    store.saveMigrations(); // what the 200 ms timer does
    const users = usersIn();
    for (const u of users) {
      expect(u).not.toHaveProperty('scrypt');
      expect(Buffer.from(u.sha256.hash, 'base64')).toHaveLength(32);
      expect(u.createdAt).toBe('2026-01-01T00:00:00.000Z');
    }
    const reopened = openCredentialStore(dir);
    expect(await reopened.verify('gw1', secrets[0])).toMatchObject({ username: 'gw1' });
    expect(await reopened.verify('gw1', secrets[1])).toBeUndefined();
  });

  it('does not let a pending migration undo a revocation written by another process meanwhile', async () => {
    const secret = crypto.randomBytes(24).toString('base64url');
    writeFileSync(join(dir, 'credentials.json'), JSON.stringify({ version: 1, users: [oldScryptEntry('gw1', secret)] }));
    const store = openCredentialStore(dir);
    expect(await store.verify('gw1', secret)).toBeDefined();
    openCredentialStore(dir).revoke('gw1'); // the CLI, before the broker's migration write
    store.saveMigrations();
    expect(usersIn()[0]).toMatchObject({ revokedAt: expect.any(String) });
    expect(await store.verify('gw1', secret)).toBeUndefined();
  });

  it('refuses a revoked machine credential with its right secret', async () => {
    const store = openCredentialStore(dir);
    const { password } = store.create('gw1', 'gateway');
    store.revoke('gw1');
    expect(await store.verify('gw1', password)).toBeUndefined();
    expect(await openCredentialStore(dir).verify('gw1', password)).toBeUndefined();
  });
});

describe('citysteward credential import', () => {
  it('imports 1,000 gateways from CSV in one process, printing each generated secret once, and they verify', async () => {
    const given = crypto.randomBytes(32).toString('base64url');
    const lines = ['id,secret', `gw-0,${given}`, ...Array.from({ length: 999 }, (_, i) => `gw-${i + 1}`)];
    writeFileSync(join(dir, 'gateways.csv'), lines.join('\n') + '\n');
    const data = join(dir, 'data');
    const started = Date.now();
    const r = await runCliOnce(['credential', 'import', join(dir, 'gateways.csv'), '--data-dir', data]);
    expect(r.code, r.output).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000); // process start included; the import itself is milliseconds
    const printed = new Map(r.output.split('\n').filter((l) => /^gw-\d+,/.test(l)).map((l) => l.split(',') as [string, string]));
    expect(printed.size).toBe(999);
    expect(printed.has('gw-0')).toBe(false); // a given secret is not echoed
    expect(r.output).toContain('imported 1000 credential(s)');
    const store = openCredentialStore(data);
    expect(store.list()).toHaveLength(1000);
    expect(await store.verify('gw-0', given)).toMatchObject({ role: 'gateway', gateway: 'gw-0' });
    expect(await store.verify('gw-777', printed.get('gw-777')!)).toMatchObject({ username: 'gw-777' });
    expect(readFileSync(join(data, 'credentials.json'), 'utf8')).not.toContain(printed.get('gw-777')!);
  });

  it('refuses a whole file with bad lines, naming each line, and imports nothing', async () => {
    const data = join(dir, 'data');
    openCredentialStore(data).create('gw-old', 'gateway');
    writeFileSync(join(dir, 'bad.csv'), ['gw-1', 'gw-2', 'bad/id', 'gw-2', '# a comment', 'gw-5,short', 'gw-old', 'gw-8,a,b'].join('\n'));
    const r = await runCliOnce(['credential', 'import', join(dir, 'bad.csv'), '--data-dir', data]);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain(GatewayErrors.IMPORT_INVALID);
    for (const expected of ['line 3: invalid id "bad/id"', 'line 4: id gw-2 repeats line 2', 'line 6: secret too short', 'line 7: id gw-old already exists', 'line 8: 3 fields']) {
      expect(r.output).toContain(expected);
    }
    expect(openCredentialStore(data).list().map((i) => i.username)).toEqual(['gw-old']);
  });

  it('imports a JSON array and names a bad entry by its position', async () => {
    const store = CredentialStore.memory();
    const { parseImport } = await import('../../gateway/credential-import.ts');
    const ok = store.importMany(parseImport(JSON.stringify([{ id: 'gw-a' }, { id: 'gw-b', secret: 'a chosen passphrase' }]), 'gateway'));
    expect(ok).toMatchObject({ created: 2, generated: [{ username: 'gw-a' }] });
    expect(await store.verify('gw-b', 'a chosen passphrase')).toMatchObject({ username: 'gw-b' });
    expect(() => store.importMany(parseImport(JSON.stringify([{ id: 'gw-c' }, { name: 'gw-d' }]), 'gateway'))).toThrow(/line 2: id missing/);
    expect(() => store.importMany(parseImport(JSON.stringify([{ id: 'gw-c' }, { id: 'gw-a' }]), 'gateway'))).toThrow(/line 2: id gw-a already exists/);
    expect(store.get('gw-c')).toBeUndefined();
  });
});
