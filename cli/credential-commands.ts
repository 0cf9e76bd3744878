import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CsError } from '../lib/errors.ts';
import { CREDENTIAL_ROLES } from '../gateway/credentials.ts';
import type { UserCommandHelpers } from './user-commands.ts';

/** `citysteward credential ...`: MQTT credentials in DATA_DIR/credentials.json, or on a running gateway (README "Command line"). */
export function registerCredentialCommands(program: Command, h: UserCommandHelpers): void {
  const cred = program.command('credential').description('provision MQTT credentials (stored hashed in DATA_DIR/credentials.json, or on a running gateway with --admin-url)');
  cred.command('create <username>')
    .description('create a credential and print its password once')
    .addOption(new Option('--role <role>', 'gateway (its own namespace), service (the cloud), observer (read-only cs/v1/#) or integrator (read-only events and readings)').choices([...CREDENTIAL_ROLES]).default('gateway'))
    .addOption(h.dataDirOption())
    .addOption(adminUrlOption())
    .action(async (username, o) => {
      if (o.adminUrl) {
        const r = await gatewayAdmin(o.adminUrl, 'POST', '/admin/credentials', { username, role: o.role }) as { password: string };
        console.log(JSON.stringify({ username, role: o.role, password: r.password }));
        return;
      }
      const { openCredentialStore } = await import('../gateway/credentials.ts');
      const { password } = openCredentialStore(resolve(o.dataDir)).create(username, o.role);
      console.log(JSON.stringify({ username, role: o.role, password }));
    });
  cred.command('import <file>').description('add many credentials from a CSV (id[,secret] a line) or JSON ([{ "id", "secret"? }]) file, all or nothing; prints the generated secrets once, as CSV id,secret')
    .addOption(new Option('--role <role>', 'role of every imported credential').choices([...CREDENTIAL_ROLES]).default('gateway')).addOption(h.dataDirOption())
    .action(async (file, o) => (await import('./credential-import.ts')).importCredentials(resolve(file), resolve(o.dataDir), o.role));
  cred.command('list').description('list credentials (never passwords)').addOption(h.dataDirOption()).addOption(adminUrlOption())
    .action(async (o) => {
      if (o.adminUrl) {
        console.log(JSON.stringify(await gatewayAdmin(o.adminUrl, 'GET', '/admin/credentials'), null, 2));
        return;
      }
      const { openCredentialStore } = await import('../gateway/credentials.ts');
      console.log(JSON.stringify(openCredentialStore(resolve(o.dataDir)).list(), null, 2));
    });
  cred.command('verify-log').description('recompute the chained log of credential changes (DATA_DIR/credentials-log.jsonl); name the first line altered, deleted or inserted out of place (exit 1 if any)')
    .addOption(h.dataDirOption())
    .action(async (o) => {
      const { verifyMachineLog } = await import('../gateway/credential-log.ts');
      const report = verifyMachineLog(resolve(o.dataDir, 'credentials.json'));
      console.log(JSON.stringify(report, null, 2));
      if (!report.ok) process.exitCode = 1;
    });
  cred.command('rotate <username>').description('issue a new password').addOption(h.dataDirOption()).addOption(adminUrlOption())
    .action(async (username, o) => {
      if (o.adminUrl) {
        const r = await gatewayAdmin(o.adminUrl, 'POST', `/admin/credentials/${encodeURIComponent(username)}/rotate`) as { password: string };
        console.log(JSON.stringify({ username, password: r.password }));
        return;
      }
      const { openCredentialStore } = await import('../gateway/credentials.ts');
      console.log(JSON.stringify({ username, ...openCredentialStore(resolve(o.dataDir)).rotate(username) }));
    });
  cred.command('revoke <username>').description('revoke a credential (its live connections are closed)').addOption(h.dataDirOption()).addOption(adminUrlOption())
    .action(async (username, o) => {
      if (o.adminUrl) await gatewayAdmin(o.adminUrl, 'DELETE', `/admin/credentials/${encodeURIComponent(username)}`);
      else {
        const { openCredentialStore } = await import('../gateway/credentials.ts');
        openCredentialStore(resolve(o.dataDir)).revoke(username);
      }
      console.log(`revoked ${username}`);
    });
}

const adminUrlOption = () => new Option('--admin-url <url>', "a running gateway's HTTP endpoint (e.g. http://10.0.0.5:9883): manage its credentials through its admin API; token in CS_GATEWAY_ADMIN_TOKEN");

/** One call to a gateway's admin API (gateway/admin.ts); its `{ code, message }` errors become CsErrors. */
async function gatewayAdmin(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = process.env.CS_GATEWAY_ADMIN_TOKEN;
  if (!token) throw new CsError('CS_CLI_USAGE', '--admin-url needs the admin token in the environment variable CS_GATEWAY_ADMIN_TOKEN');
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new CsError('CS_CLI_ADMIN_UNREACHABLE', `cannot reach the gateway admin API at ${base}: ${(err as Error).message}`);
  }
  const json = await res.json().catch(() => ({})) as { code?: string; message?: string };
  if (!res.ok) throw new CsError(json.code ?? 'CS_CLI_ADMIN_FAILED', `gateway admin API answered ${res.status}: ${json.message ?? res.statusText}`);
  return json;
}
