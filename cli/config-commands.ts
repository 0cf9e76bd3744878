import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { CsError } from '../lib/errors.ts';
import type { UserCommandHelpers } from './user-commands.ts';

/**
 * `citysteward config list|get|set|changes`: configuration as data through a running cloud's API
 * (README "Configuration as data"): read a kind's document, replace it from a YAML or JSON file
 * (admin), read the audit of changes.
 */
export function registerConfigCommands(program: Command, h: UserCommandHelpers): void {
  const api = (c: Command) => c
    .option('--url <url>', 'the cloud (default: the running demo in DATA_DIR, else http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: CS_TOKEN, else the demo\'s admin token)')
    .addOption(h.dataDirOption());
  const call = async (o: { url?: string; token?: string; dataDir: string }, method: string, path: string, body?: unknown) => {
    const { callApi, resolveTarget } = await import('./api-client.ts');
    return callApi(resolveTarget(o, 'admin'), method, path, body);
  };
  const print = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  const config = program.command('config').description('configuration as data: rules, catalogue, routing, calendar, escalation, emergency (through the API)');
  api(config.command('list').description('the kinds and their versions')).action(async (o) => print(await call(o, 'GET', '/api/config')));
  api(config.command('get <kind>').description('one kind\'s document in force and its version'))
    .action(async (kind, o) => print(await call(o, 'GET', `/api/config/${encodeURIComponent(kind)}`)));
  api(config.command('set <kind> <file>')
    .description('replace a kind\'s whole document with a YAML or JSON file (admin): refused whole, naming each key and problem, or applied on every worker')
    .option('--base-version <n>', 'refuse if the version in force is no longer this one', (v) => Number.parseInt(v, 10)))
    .action(async (kind, file, o) => {
      let document: unknown;
      try {
        document = parse(readFileSync(resolve(file), 'utf8'));
      } catch (err) {
        throw new CsError('CS_CLI_USAGE', `cannot read ${resolve(file)}: ${(err as Error).message}`);
      }
      print(await call(o, 'PUT', `/api/config/${encodeURIComponent(kind)}`, { document, ...(o.baseVersion !== undefined ? { baseVersion: o.baseVersion } : {}) }));
    });
  api(config.command('changes').description('the audit of changes, applied and refused, newest first')
    .option('--kind <kind>', 'one kind only').option('--limit <n>', 'how many (default 20)', (v) => Number.parseInt(v, 10), 20))
    .action(async (o) => print(await call(o, 'GET', `/api/config/changes?limit=${o.limit}${o.kind ? `&kind=${encodeURIComponent(o.kind)}` : ''}`)));
}
