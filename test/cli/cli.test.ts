import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { runCli, runCliOnce, type Running } from '../helpers/process.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';

const dirs: string[] = [];
const procs: Running[] = [];
const servers: Server[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cs-cli-'));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('citysteward command line', () => {
  it('prints help for the program, and every subcommand has a description and its own help', async () => {
    const r = await runCliOnce(['--help']);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(/Usage: citysteward/);
    const { buildProgram } = await import('../../cli/main.ts');
    const walk = (c: Command, path: string[]): string[] => c.commands.flatMap((sub) => [[...path, sub.name()].join(' '), ...walk(sub, [...path, sub.name()])]);
    const program = buildProgram();
    const all = walk(program, []);
    expect(all).toEqual(expect.arrayContaining(['demo', 'gateway', 'cloud', 'edge', 'sim', 'sim set', 'token create', 'credential create', 'emergency on', 'drill']));
    for (const path of all) {
      const cmd = path.split(' ').reduce<Command>((c, name) => c.commands.find((x) => x.name() === name)!, program);
      expect(cmd.description(), path).not.toBe('');
      expect(cmd.helpInformation(), path).toMatch(new RegExp(`Usage: citysteward ${path}`));
    }
  });

  it('the gateway alone refuses a taken MQTT port with a clear message instead of moving elsewhere', async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const r = await runCliOnce(['gateway', '--host', '127.0.0.1', '--mqtt-port', String(port), '--data-dir', tmp()]);
    expect(r.code).toBe(2);
    expect(r.output).toContain(`MQTT port ${port} is already in use`);
    expect(r.output).toContain('--mqtt-port');
  });

  it('a bad config file is refused naming the file, the key and the problem', async () => {
    const dir = tmp();
    const file = join(dir, 'cloud.yaml');
    writeFileSync(file, 'district: x.yaml\nhttp:\n  port: eighty\nmqtt: { url: "mqtt://127.0.0.1:1", username: cloud, password: p }\n');
    const r = await runCliOnce(['cloud', '--config', file, '--data-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.output).toContain(file);
    expect(r.output).toMatch(/http\.port: .*integer/i);
  });

  it('npm start: the demo opens a case from its scripted breach within 60 s and writes its tokens', async () => {
    const dir = tmp();
    const demo = runCli(['demo', '--data-dir', dir, '--http-port', '0', '--mqtt-port', '0'], { CS_LOG_LEVEL: 'info' });
    procs.push(demo);
    const [, http] = await demo.waitFor(/Cloud API\s+(http:\/\/[^\s]+)\/api/, 30_000);
    const [line] = await demo.waitFor(/CASE \S+ opened: waterlogging .* at XZ-WL-001[^\n]*/, 60_000);
    expect(line).toMatch(/dispatched to xz-drainage, due \d{4}-\d\d-\d\dT/);
    const tokens = JSON.parse(readFileSync(join(dir, 'demo-tokens.json'), 'utf8')) as Record<string, string>;
    expect(Object.keys(tokens)).toEqual(expect.arrayContaining(['admin', 'operator', 'commander', 'verifier', 'crew:xz-drainage']));
    // The demo's people: a 0600 file; the banner names them, but as JSON lines (logs) it prints no password.
    const people = JSON.parse(readFileSync(join(dir, 'demo-users.json'), 'utf8')) as { url: string; users: { username: string; password: string }[] };
    expect(statSync(join(dir, 'demo-users.json')).mode & 0o777).toBe(0o600);
    expect(people.url).toBe(http);
    const operator = people.users.find((u) => u.username === 'operator')!;
    const signedIn = await fetch(`${http}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'operator', password: operator.password }) });
    expect(signedIn.status).toBe(200);
    expect(demo.output()).toContain('crew-xz-drainage');
    for (const u of people.users) expect(demo.output()).not.toContain(u.password);
    const res = await fetch(`${http}/api/cases`, { headers: { authorization: `Bearer ${tokens.operator}` } });
    expect(res.status).toBe(200);
    const body = await res.json() as { items: { id: string; device: string; hazard: string; severity: string; unit: string; deadline: string }[] };
    const c = body.items.find((x) => x.device === 'XZ-WL-001');
    expect(c).toMatchObject({ hazard: 'waterlogging', unit: 'xz-drainage' });
    expect(['major', 'critical']).toContain(c!.severity);
    expect(new Date(c!.deadline).toISOString()).toBe(c!.deadline);

    // `sim set` against the running demo: a real Modbus write through the recorded endpoint.
    const set = await runCliOnce(['sim', 'set', 'XZ-WL-003', 'level_m=0.9', '--data-dir', dir]);
    expect(set.code, set.output).toBe(0);
    await demo.waitFor(/CASE \S+ opened: waterlogging \(major\) at XZ-WL-003/, 20_000);

    // Not a terminal: every console line is one JSON record, and no record carries a key twice
    // (fault: the demo bound `svc` and each service bound `svc` again, e.g. "svc":"cloud","svc":"http").
    const lines = demo.output().split('\n').filter((l) => l.trim());
    for (const l of lines) {
      expect(() => JSON.parse(l), l).not.toThrow();
      expect(duplicateKeys(l), l).toEqual([]);
    }
    expect(lines.some((l) => (JSON.parse(l) as { svc?: string }).svc === 'cloud')).toBe(true);

    // The read-only MQTT identity the demo printed watches the traffic with a standard client.
    const [, sub] = await demo.waitFor(/watch MQTT\s+(mosquitto_sub [^"]+)"/, 1_000);
    const observer = JSON.parse(readFileSync(join(dir, 'demo-mqtt-observer.json'), 'utf8')) as { url: string; username: string; password: string };
    expect(sub).toContain(`-u ${observer.username}`);
    const u = new URL(observer.url);
    const got = await new Promise<string>((resolve, reject) => {
      const p = spawn('mosquitto_sub', ['-h', u.hostname, '-p', u.port, '-u', observer.username, '-P', observer.password, '-t', 'cs/v1/+/up/#', '-C', '1', '-W', '20', '-v']);
      let out = '';
      p.stdout.on('data', (b: Buffer) => { out += b.toString(); });
      p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`mosquitto_sub exited ${code}: ${out}`))));
    });
    expect(got).toMatch(/^cs\/v1\/gw-xz-\S+\/up\/XZ-\S+ \{/);

    // A restart revokes the previous run's tokens and prints only what changed.
    await demo.stop();
    const again = runCli(['demo', '--data-dir', dir, '--http-port', '0', '--mqtt-port', '0']);
    procs.push(again);
    const [, http2] = await again.waitFor(/Cloud API\s+(http:\/\/[^\s]+)\/api/, 30_000);
    await again.waitFor(/the previous run's 9 tokens are revoked/, 5_000);
    await again.waitFor(/\d+ cases from earlier runs/, 10_000);
    const fresh = JSON.parse(readFileSync(join(dir, 'demo-tokens.json'), 'utf8')) as Record<string, string>;
    expect((await fetch(`${http2}/api/cases`, { headers: { authorization: `Bearer ${tokens.admin}` } })).status).toBe(401);
    expect((await fetch(`${http2}/api/cases`, { headers: { authorization: `Bearer ${fresh.admin}` } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_000));
    // Fault: the console reprinted every earlier case as "opened" after a restart.
    expect(again.output()).not.toContain(`CASE ${c!.id} opened`);
  }, 180_000);
});
