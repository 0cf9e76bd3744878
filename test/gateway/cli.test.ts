import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, runCliOnce, type Running } from '../helpers/process.ts';

/** `citysteward gateway` with its HTTP endpoint, and `citysteward credential --admin-url` against it. */

const TOKEN = 'cli-admin-token-0123456789';
const running: Running[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function mosquittoPub(port: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('mosquitto_pub', ['-V', 'mqttv311', '-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d) => { stderr += d; });
    p.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('gateway command line', () => {
  it('provisions and revokes credentials of a running gateway through its admin API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-gwcli-'));
    dirs.push(dir);
    const gw = runCli(['gateway', '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0'], { CS_GATEWAY_ADMIN_TOKEN: TOKEN, CS_LOG_LEVEL: 'warn' });
    running.push(gw);
    const port = Number((await gw.waitFor(/MQTT listening on mqtt:\/\/[\d.]+:(\d+)/))[1]);
    const [, http] = await gw.waitFor(/HTTP on (http:\/\/\S+)/);

    const created = await runCliOnce(['credential', 'create', 'gw-remote', '--role', 'gateway', '--admin-url', http], { CS_GATEWAY_ADMIN_TOKEN: TOKEN });
    expect(created.code).toBe(0);
    const { password } = JSON.parse(created.output.trim().split('\n').pop()!) as { password: string };
    expect((await mosquittoPub(port, ['-u', 'gw-remote', '-P', password, '-t', 'cs/v1/gw-remote/health', '-m', '{}', '-q', '1'])).code).toBe(0);

    const list = await runCliOnce(['credential', 'list', '--admin-url', http], { CS_GATEWAY_ADMIN_TOKEN: TOKEN });
    expect(JSON.parse(list.output)).toEqual([expect.objectContaining({ username: 'gw-remote', role: 'gateway' })]);

    expect((await runCliOnce(['credential', 'revoke', 'gw-remote', '--admin-url', http], { CS_GATEWAY_ADMIN_TOKEN: TOKEN })).code).toBe(0);
    const refused = await mosquittoPub(port, ['-u', 'gw-remote', '-P', password, '-t', 'cs/v1/gw-remote/health', '-m', '{}']);
    expect(refused.stderr).toContain('Connection Refused: not authorised');
  });

  it('warns loudly when started with --allow-anonymous, and then lets mosquitto_pub in without credentials', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-gwcli-'));
    dirs.push(dir);
    const gw = runCli(['gateway', '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0', '--allow-anonymous']);
    running.push(gw);
    const port = Number((await gw.waitFor(/MQTT listening on mqtt:\/\/[\d.]+:(\d+)/))[1]);
    // The service's log line goes through pino's asynchronous destination: it may follow the CLI's own line.
    await gw.waitFor(/ANONYMOUS ACCESS IS ON/);
    expect(gw.output()).toContain('WARNING: anonymous access is ON');
    expect((await mosquittoPub(port, ['-t', 'cs/v1/dev/up/d1', '-m', '{}', '-q', '1'])).code).toBe(0);
  });

  it('refuses bad http.limits and logins values in the config naming the key, and applies good ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-gwcli-'));
    dirs.push(dir);
    const cfg = (body: string) => { const f = join(dir, `gw-${Math.random().toString(36).slice(2)}.yaml`); writeFileSync(f, body); return f; };
    const start = ['gateway', '--data-dir', dir, '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--config'];

    const negative = await runCliOnce([...start, cfg('http:\n  limits:\n    maxConnectionsPerAddress: -1\n')]);
    expect(negative.code).not.toBe(0);
    expect(negative.output).toContain('http.limits.maxConnectionsPerAddress');
    const crossed = await runCliOnce([...start, cfg('http:\n  limits:\n    headersTimeoutMs: 20000\n    requestTimeoutMs: 10000\n')]);
    expect(crossed.code).not.toBe(0);
    expect(crossed.output).toMatch(/http\.limits: .*headersTimeoutMs \(20000\) must not exceed requestTimeoutMs/);
    const logins = await runCliOnce([...start, cfg('logins:\n  freeFailuresPerUsername: lots\n')]);
    expect(logins.code).not.toBe(0);
    expect(logins.output).toContain('logins.freeFailuresPerUsername');

    const created = await runCliOnce(['credential', 'create', 'gw-limits', '--role', 'gateway', '--data-dir', dir]);
    const { password } = JSON.parse(created.output.trim().split('\n').pop()!) as { password: string };
    const gw = runCli([...start, cfg('http:\n  limits:\n    maxConnectionsPerAddress: 1\nlogins:\n  freeFailuresPerUsername: 0\n  backoffMs: 60000\n')], { CS_LOG_LEVEL: 'warn' });
    running.push(gw);
    const port = Number((await gw.waitFor(/MQTT listening on mqtt:\/\/[\d.]+:(\d+)/))[1]);
    const httpPort = Number((await gw.waitFor(/HTTP on http:\/\/[\d.]+:(\d+)/))[1]);

    // http.limits.maxConnectionsPerAddress: 1 -> a second connection from this address is closed at once.
    const first = connect(httpPort, '127.0.0.1');
    await new Promise((r) => first.once('connect', r));
    const second = connect(httpPort, '127.0.0.1');
    await new Promise<void>((resolve) => second.once('close', () => resolve()));
    first.destroy();

    // logins.freeFailuresPerUsername: 0 -> one wrong password locks (username, address) for 60 s; the default allows 5.
    expect((await mosquittoPub(port, ['-u', 'gw-limits', '-P', 'wrong-password', '-t', 'cs/v1/gw-limits/health', '-m', '{}'])).stderr).toContain('not authorised');
    expect((await mosquittoPub(port, ['-u', 'gw-limits', '-P', password, '-t', 'cs/v1/gw-limits/health', '-m', '{}'])).stderr).toContain('not authorised');
  });
});
