import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import type { District } from '../devices/district.ts';
import type { Role } from '../cloud/tokens.ts';
import { generatePassword, type UserStore } from '../cloud/users.ts';

/**
 * The demo's people (README "Signing in"): admin, operator, commander, verifier, inspector and `crew-UNIT` per
 * unit, with generated passwords in DATA_DIR/demo-users.json (0600, written atomically). A later start
 * keeps the users and their passwords; a user whose password the file no longer opens (the file gone,
 * or changed with `user passwd`) gets a new one, and the file is written again.
 */

export const DEMO_USERS_FILE = 'demo-users.json';

export interface DemoUser { username: string; password: string; role: Role; unit: string | null }

export function demoUserList(district: District): { username: string; role: Role; unit: string | null }[] {
  return [
    ...(['admin', 'operator', 'commander', 'verifier', 'inspector'] as const).map((role) => ({ username: role, role, unit: null })),
    ...district.units.map((u) => ({ username: `crew-${u.id.toLowerCase()}`, role: 'crew' as const, unit: u.id })),
  ];
}

function previousPasswords(file: string): Map<string, string> {
  try {
    const old = JSON.parse(readFileSync(file, 'utf8')) as { users?: { username?: unknown; password?: unknown }[] };
    return new Map((old.users ?? []).filter((u) => typeof u.username === 'string' && typeof u.password === 'string').map((u) => [u.username as string, u.password as string]));
  } catch {
    return new Map();
  }
}

export async function ensureDemoUsers(users: UserStore, district: District, dataDir: string, url: string): Promise<{ file: string; users: DemoUser[]; created: number; reset: number }> {
  const file = join(dataDir, DEMO_USERS_FILE);
  const previous = previousPasswords(file);
  const out: DemoUser[] = [];
  let created = 0;
  let reset = 0;
  for (const u of demoUserList(district)) {
    const existing = await users.get(u.username);
    const known = previous.get(u.username);
    let password: string;
    if (!existing) {
      password = generatePassword();
      await users.create(u.username, u.role, u.unit ?? undefined, password);
      created++;
    } else if (known !== undefined && existing.role === u.role && await users.authenticate(u.username, known)) {
      password = known;
    } else {
      password = generatePassword();
      await users.setPassword(u.username, password);
      reset++;
    }
    out.push({ username: u.username, password, role: existing?.role ?? u.role, unit: existing ? existing.unit : u.unit });
  }
  writeFileAtomic(file, JSON.stringify({ url, users: out }, null, 2) + '\n', { mode: 0o600 });
  return { file, users: out, created, reset };
}
