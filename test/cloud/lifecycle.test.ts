import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCloud } from '../../cloud/app.ts';
import { district, freshDatabase, profiles } from './fixtures.ts';

/** File descriptors of this process that point at `file` (its WAL and SHM included). */
function openHandles(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file);
    } catch {
      return false;
    }
  }).length;
}

const drops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const d of drops.splice(0)) await d();
});

describe('the cloud factory and its start and stop', () => {
  it('building the cloud opens no database: the SQLite file appears at start() and every handle closes at stop() (fault: buildCloud opened it in the factory)', async () => {
    const fresh = await freshDatabase('sqlite');
    drops.push(fresh.drop);
    const file = (fresh.db as { file: string }).file;
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false });
    expect(existsSync(file)).toBe(false);
    expect(openHandles(file)).toBe(0);
    await cloud.start();
    expect(existsSync(file)).toBe(true);
    expect(openHandles(file)).toBeGreaterThan(0);
    await cloud.stop();
    expect(openHandles(file)).toBe(0);
  });

  it('a cloud built but never started stops cleanly without creating its database', async () => {
    const fresh = await freshDatabase('sqlite');
    drops.push(fresh.drop);
    const cloud = await buildCloud({ db: fresh.db, district, profiles, escalation: false, emergency: false });
    await cloud.stop();
    expect(existsSync((fresh.db as { file: string }).file)).toBe(false);
  });

  it('a database that cannot be opened is reported by start() with its code, not thrown by the factory', async () => {
    const cloud = await buildCloud({ db: { kind: 'sqlite', file: '/nonexistent-dir/cs.db' }, district, profiles, escalation: false, emergency: false });
    await expect(cloud.start()).rejects.toMatchObject({ code: 'CS_CLOUD_DB_UNAVAILABLE' });
    await cloud.stop();
  });
});
