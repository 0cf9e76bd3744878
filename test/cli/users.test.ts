import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, runCliOnce } from '../helpers/process.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { ensureDemoUsers, DEMO_USERS_FILE, type DemoUser } from '../../cli/demo-users.ts';
import { district, profiles } from '../cloud/fixtures.ts';

/** `citysteward user ...` through the real program, and the demo's users file. */

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'cs-users-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A cloud on the data directory's database, signing in over a real socket. */
async function withCloud<T>(dir: string, fn: (cloud: Cloud, base: string) => Promise<T>): Promise<T> {
  const cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'citysteward.db') }, district, profiles, escalation: false });
  await cloud.start();
  try {
    return await fn(cloud, await cloud.app.listen({ host: '127.0.0.1', port: 0 }));
  } finally {
    await cloud.stop();
  }
}
const signIn = (base: string, username: string, password: string) => fetch(`${base}/api/session`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }),
});

describe('citysteward user', () => {
  it('create without --password and without a terminal prints a generated password once; it signs in, and the database holds only its hash', async () => {
    const dir = tmp();
    const r = await runCliOnce(['user', 'create', 'wang', '--role', 'crew', '--unit', 'xz-drainage', '--data-dir', dir]);
    expect(r.code, r.output).toBe(0);
    const printed = JSON.parse(r.output.trim().split('\n').pop()!) as { username: string; role: string; unit: string; password: string };
    expect(printed).toMatchObject({ username: 'wang', role: 'crew', unit: 'xz-drainage' });
    expect(printed.password).toMatch(/^[A-Za-z0-9]{20}$/);
    const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
    const row = await database.db.selectFrom('users').selectAll().where('username', '=', 'wang').executeTakeFirstOrThrow();
    await database.close();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(printed.password);
    await withCloud(dir, async (_cloud, base) => {
      const res = await signIn(base, 'wang', printed.password);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ user: { username: 'wang', role: 'crew', unit: 'xz-drainage' } });
    });
  }, 60_000);

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)('create on a terminal asks twice without echoing what is typed (util-linux script gives it a pty)', async () => {
    const dir = tmp();
    const password = 'typed-on-a-tty-1';
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} user create tty --role operator --data-dir ${dir}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const seen = (re: RegExp) => new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(out)}`)), 30_000);
      const check = () => { if (re.test(out)) { clearTimeout(t); child.stdout.off('data', check); resolve(); } };
      child.stdout.on('data', check);
      check();
    });
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    await seen(/password: /);
    child.stdin.write(`${password}\r`);
    await seen(/again: /);
    child.stdin.write(`${password}\r`);
    await seen(/"username":"tty"/);
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    expect(out).not.toContain(password);
    await withCloud(dir, async (_c, base) => {
      expect((await signIn(base, 'tty', password)).status).toBe(200);
    });
  }, 60_000);

  it('create refuses a crew user without a unit, a duplicate name and a short password, naming the problem', async () => {
    const dir = tmp();
    const noUnit = await runCliOnce(['user', 'create', 'li', '--role', 'crew', '--data-dir', dir]);
    expect(noUnit.code).not.toBe(0);
    expect(noUnit.output).toMatch(/crew user needs --unit/);
    expect((await runCliOnce(['user', 'create', 'li', '--role', 'operator', '--password', 'long-enough-pw', '--data-dir', dir])).code).toBe(0);
    const again = await runCliOnce(['user', 'create', 'li', '--role', 'operator', '--password', 'long-enough-pw', '--data-dir', dir]);
    expect(again.output).toMatch(/exists already .*\[CS_CLOUD_USER_EXISTS\]/);
    const short = await runCliOnce(['user', 'create', 'zhao', '--role', 'operator', '--password', 'short', '--data-dir', dir]);
    expect(short.output).toMatch(/at least 10 characters \[CS_CLOUD_USER_INVALID\]/);
  }, 60_000);

  it('passwd ends the old password and sessions; disable refuses sign-in', async () => {
    const dir = tmp();
    expect((await runCliOnce(['user', 'create', 'chen', '--role', 'verifier', '--password', 'first-password-1', '--data-dir', dir])).code).toBe(0);
    // A session opened with the first password (its cookie), which the passwd must end.
    const cookie = await withCloud(dir, async (_c, base) => {
      const r = await signIn(base, 'chen', 'first-password-1');
      expect(r.status).toBe(200);
      const c = r.headers.get('set-cookie')!.split(';')[0]!;
      expect((await fetch(`${base}/api/session`, { headers: { cookie: c } })).status).toBe(200);
      return c;
    });
    expect((await runCliOnce(['user', 'passwd', 'chen', '--password', 'second-password-2', '--data-dir', dir])).code).toBe(0);
    await withCloud(dir, async (_c, base) => {
      expect((await fetch(`${base}/api/session`, { headers: { cookie } })).status).toBe(401);
      expect((await signIn(base, 'chen', 'first-password-1')).status).toBe(401);
      expect((await signIn(base, 'chen', 'second-password-2')).status).toBe(200);
    });
    const d = await runCliOnce(['user', 'disable', 'chen', '--data-dir', dir]);
    expect(d.output).toMatch(/disabled chen/);
    await withCloud(dir, async (_c, base) => {
      expect((await signIn(base, 'chen', 'second-password-2')).status).toBe(401);
    });
  }, 60_000);
});

describe('the demo users', () => {
  let dir: string;
  let cloud: Cloud;
  let base: string;
  beforeAll(async () => {
    dir = tmp();
    cloud = await buildCloud({ db: { kind: 'sqlite', file: join(dir, 'citysteward.db') }, district, profiles, escalation: false });
    await cloud.start();
    base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await cloud?.stop();
  });
  const file = () => JSON.parse(readFileSync(join(dir, DEMO_USERS_FILE), 'utf8')) as { url: string; users: DemoUser[] };

  it('creates admin, operator, commander, verifier, inspector and crew-UNIT per unit, in a 0600 file with the URL; each signs in with its role', async () => {
    const r = await ensureDemoUsers(cloud.users, district, dir, base);
    expect(r.created).toBe(5 + district.units.length);
    expect(statSync(r.file).mode & 0o777).toBe(0o600);
    const f = file();
    expect(f.url).toBe(base);
    expect(f.users.map((u) => u.username)).toEqual(['admin', 'operator', 'commander', 'verifier', 'inspector', ...district.units.map((u) => `crew-${u.id}`)]);
    const crew = f.users.find((u) => u.username === 'crew-zh-gas')!;
    expect(await (await signIn(base, crew.username, crew.password)).json()).toEqual({ user: { username: 'crew-zh-gas', role: 'crew', unit: 'zh-gas' } });
  });

  it('a later start keeps the users and their passwords; with the file gone it resets them and writes it again', async () => {
    const before = file();
    const again = await ensureDemoUsers(cloud.users, district, dir, base);
    expect(again).toMatchObject({ created: 0, reset: 0 });
    expect(file().users).toEqual(before.users);
    rmSync(join(dir, DEMO_USERS_FILE));
    const reset = await ensureDemoUsers(cloud.users, district, dir, base);
    expect(reset).toMatchObject({ created: 0, reset: before.users.length });
    const op = before.users.find((u) => u.username === 'operator')!;
    expect((await signIn(base, 'operator', op.password)).status).toBe(401);
    expect((await signIn(base, 'operator', file().users.find((u) => u.username === 'operator')!.password)).status).toBe(200);
  });
});
