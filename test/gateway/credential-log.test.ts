/**
 * The broker's credential log (docs/architecture.md#audit-chains): every change of a machine
 * credential made with the real CLI or through the store a gateway serves its admin API from is a
 * line of DATA_DIR/credentials-log.jsonl chained to the one before, its head in credentials.json;
 * `citysteward credential verify-log` names a line altered, deleted or cut off the end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { runCliOnce } from '../helpers/process.ts';

describe('the broker credential log', () => {
  let dir: string;
  let data: string;
  let good: string;
  const secrets: string[] = [];
  const logFile = () => join(data, 'credentials-log.jsonl');
  const lines = () => readFileSync(logFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const verifyLog = async () => {
    const r = await runCliOnce(['credential', 'verify-log', '--data-dir', data]);
    return { code: r.code, report: JSON.parse(r.output) };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-cred-log-'));
    data = join(dir, 'data');
    const created = await runCliOnce(['credential', 'create', 'gw-1', '--data-dir', data]);
    expect(created.code, created.output).toBe(0);
    secrets.push(JSON.parse(created.output).password);
    writeFileSync(join(dir, 'more.csv'), 'gw-2\ngw-3\n');
    const imported = await runCliOnce(['credential', 'import', join(dir, 'more.csv'), '--data-dir', data]);
    expect(imported.code, imported.output).toBe(0);
    const rotated = await runCliOnce(['credential', 'rotate', 'gw-1', '--data-dir', data]);
    secrets.push(JSON.parse(rotated.output).password);
    // The store a running gateway serves /admin/credentials from names its own actor.
    openCredentialStore(data, { actor: 'gateway-admin-api' }).revoke('gw-2');
    good = readFileSync(logFile(), 'utf8');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('records who changed which credential and how, chained, never a secret or its hash', async () => {
    expect(lines().map((l) => [l.seq, l.action, l.username, l.role, l.actor.replace(/^cli:.*/, 'cli')])).toEqual([
      [1, 'create', 'gw-1', 'gateway', 'cli'], [2, 'import', 'gw-2', 'gateway', 'cli'], [3, 'import', 'gw-3', 'gateway', 'cli'],
      [4, 'rotate', 'gw-1', 'gateway', 'cli'], [5, 'revoke', 'gw-2', 'gateway', 'gateway-admin-api'],
    ]);
    const file = JSON.parse(readFileSync(join(data, 'credentials.json'), 'utf8'));
    expect(file.logHead).toBe(lines()[4].hash);
    for (const s of [...secrets, ...file.users.map((u: any) => u.sha256?.hash ?? u.scrypt.hash)]) expect(good).not.toContain(s);
    expect(await verifyLog()).toEqual({ code: 0, report: { ok: true, rows: 5, head: file.logHead, fault: null } });
  });

  it('names an altered line, a deleted line and a cut-off end', async () => {
    const ls = good.trim().split('\n');
    writeFileSync(logFile(), good.replace('"username":"gw-3"', '"username":"gw-9"'));
    expect(await verifyLog()).toMatchObject({ code: 1, report: { ok: false, fault: { seq: 3, kind: 'altered' } } });
    writeFileSync(logFile(), [...ls.slice(0, 1), ...ls.slice(2)].join('\n') + '\n');
    expect(await verifyLog()).toMatchObject({ code: 1, report: { ok: false, fault: { seq: 3, kind: 'broken-link' } } });
    writeFileSync(logFile(), ls.slice(0, 4).join('\n') + '\n');
    expect(await verifyLog()).toMatchObject({ code: 1, report: { ok: false, rows: 4, fault: { seq: 4, kind: 'deleted-tail' } } });
    writeFileSync(logFile(), good);
    expect((await verifyLog()).code).toBe(0);
  });
});
