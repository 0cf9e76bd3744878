import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withKeyStore } from '../../cloud/open311/keys.ts';
import { runCliOnce } from '../helpers/process.ts';

/** `citysteward open311-key create|list|revoke` (README "Open311"): the key printed once, stored hashed, revoked by id. */
describe('citysteward open311-key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-open311-key-'));
  const db = { kind: 'sqlite' as const, file: join(dir, 'citysteward.db') };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a key that verifies, lists it without the key, and revokes it', async () => {
    const created = await runCliOnce(['open311-key', 'create', '城市管家 app', '--data-dir', dir]);
    expect(created.code, created.output).toBe(0);
    const { id, key, name } = JSON.parse(created.output) as { id: string; key: string; name: string };
    expect(name).toBe('城市管家 app');
    expect(key).toMatch(/^o311_[A-Za-z0-9_-]{43}$/);
    expect(await withKeyStore(db, (k) => k.verify(key))).toBe(id);

    const listed = await runCliOnce(['open311-key', 'list', '--data-dir', dir]);
    expect(listed.code, listed.output).toBe(0);
    expect(listed.output).not.toContain(key);
    expect(JSON.parse(listed.output)).toEqual([{ id, name, createdAt: expect.any(String), revokedAt: null }]);

    const revoked = await runCliOnce(['open311-key', 'revoke', id, '--data-dir', dir]);
    expect(revoked.code, revoked.output).toBe(0);
    expect(await withKeyStore(db, (k) => k.verify(key))).toBeUndefined();
    expect((await runCliOnce(['open311-key', 'revoke', id, '--data-dir', dir])).code).toBe(1);
  }, 60_000);
});
