import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../cloud/db/database.ts';
import { createUserStore } from '../../cloud/users.ts';
import { ROOT } from '../cloud/fixtures.ts';
import { runCli, type Running } from '../helpers/process.ts';

/** `citysteward flows` as its users start it: a child process on a data directory shared with the cloud. */

let dir: string;
let flows: Running | undefined;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cs-flows-'));
  writeFileSync(join(dir, 'cloud.yaml'), `district: ${join(ROOT, 'devices/district/xiangzhou.yaml')}\nhttp: { port: 18080 }\nmqtt: { url: "mqtt://127.0.0.1:11883", username: cloud, password: cloud-password }\n`);
  const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
  await database.migrate();
  const users = createUserStore(database, Date.now, { params: { N: 1024, r: 8, p: 1 } });
  await users.create('ada', 'admin', undefined, 'ada-password-1');
  await users.create('otto', 'operator', undefined, 'otto-password-1');
  await database.close();
  flows = runCli(['flows', '--config', join(dir, 'cloud.yaml'), '--data-dir', dir, '--port', '0']);
  base = (await flows.waitFor(/Node-RED editor on (http:\/\/\S+\/)/, 60_000))[1];
}, 90_000);

afterAll(async () => {
  await flows?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(username: string, password: string): Promise<Response> {
  return fetch(`${base}auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-editor', grant_type: 'password', scope: '*', username, password }),
  });
}

describe('citysteward flows', () => {
  it('keeps the editor\'s API behind sign-in, for cloud admins only', async () => {
    expect((await fetch(`${base}auth/login`).then((r) => r.json()) as { type?: string }).type).toBe('credentials');
    for (const path of ['flows', 'nodes', 'settings']) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    expect((await signIn('ada', 'wrong-password')).status).toBe(403);
    expect((await signIn('otto', 'otto-password-1')).status).toBe(403);
    expect((await signIn('nobody', 'ada-password-1')).status).toBe(403);
  });

  it('registers the CitySteward nodes and turns palette installs and telemetry off', async () => {
    const res = await signIn('ada', 'ada-password-1');
    expect(res.status).toBe(200);
    const { access_token: token } = await res.json() as { access_token: string };
    const auth = { authorization: `Bearer ${token}`, accept: 'application/json' };
    const nodes = await fetch(`${base}nodes`, { headers: auth }).then((r) => r.json()) as { types: string[]; enabled: boolean }[];
    const types = nodes.flatMap((n) => n.types);
    for (const t of ['citysteward-server', 'citysteward-events', 'citysteward-readings', 'citysteward-case', 'citysteward-command']) expect(types).toContain(t);
    const settings = await fetch(`${base}settings`, { headers: auth }).then((r) => r.json()) as Record<string, unknown>;
    expect(settings).toMatchObject({ externalModules: { palette: { allowInstall: false, allowUpload: false } } });
    expect(JSON.stringify(settings)).not.toMatch(/cst_|citysteward":/);
  });

  it('provisions an integrator API token and a read-only MQTT identity, keeping no secret on disk', async () => {
    const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { users: { username: string; role: string }[] };
    expect(creds.users).toContainEqual(expect.objectContaining({ username: 'nodered', role: 'integrator' }));
    const record = JSON.parse(readFileSync(join(dir, 'node-red', 'citysteward-provisioned.json'), 'utf8')) as Record<string, string>;
    expect(record).toEqual({ tokenId: expect.stringMatching(/^tok_/), mqttUsername: 'nodered' });
    expect(statSync(join(dir, 'node-red', 'credential-secret')).mode & 0o077).toBe(0);
    const database = openDatabase({ kind: 'sqlite', file: join(dir, 'citysteward.db') });
    try {
      const row = await database.db.selectFrom('api_tokens').select(['role', 'revoked_at']).where('id', '=', record.tokenId).executeTakeFirst();
      expect(row).toEqual({ role: 'integrator', revoked_at: null });
    } finally {
      await database.close();
    }
  });
});
