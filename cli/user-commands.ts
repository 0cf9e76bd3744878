import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CsError } from '../lib/errors.ts';
import type { DbOptions } from '../cloud/db/database.ts';
import { ROLES } from '../cloud/roles.ts';

/** `citysteward user create|passwd|role|disable`: people who sign in (cloud/users.ts); wired as `token create`. */
export interface UserCommandHelpers {
  configOption(required: boolean): Option;
  dataDirOption(): Option;
  /** The cloud's database from its config file. */
  databaseOf(file: string, dataDir: string): DbOptions;
}

export function registerUserCommands(program: Command, h: UserCommandHelpers): void {
  const user = program.command('user').description('people who sign in to the web application (passwords stored as scrypt hashes)');
  const dbOf = (o: { config?: string; dataDir: string }): DbOptions => (o.config
    ? h.databaseOf(o.config, o.dataDir)
    : { kind: 'sqlite', file: resolve(o.dataDir, 'citysteward.db') });
  /** `--role` and `--unit`, checked together: a unit for crew users only. */
  const withRole = (c: Command, what: string) => c.addOption(new Option('--role <role>', what).choices([...ROLES]).makeOptionMandatory())
    .option('--unit <unit>', 'the unit of a crew user')
    .hook('preAction', (cmd) => {
      const o = cmd.opts();
      if (o.role === 'crew' && !o.unit) throw new CsError('CS_CLI_USAGE', 'a crew user needs --unit UNIT');
      if (o.role !== 'crew' && o.unit) throw new CsError('CS_CLI_USAGE', '--unit applies to crew users only');
    });
  withRole(user.command('create <name>'), 'role of the user')
    .description('create a user; without --password: asked twice on a terminal, else generated and printed once')
    .option('--password <password>', 'the password (visible in the process list: prefer the prompt)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (name, o) => {
      const { userCommandInDatabase } = await import('../cloud/users.ts');
      const { password, generated } = await newPassword(o.password);
      await userCommandInDatabase(dbOf(o), { kind: 'create', username: name, role: o.role, unit: o.unit, password });
      console.log(JSON.stringify({ username: name, role: o.role, unit: o.unit ?? null, ...(generated ? { password } : {}) }));
    });
  user.command('passwd <name>')
    .description('set a new password (asked on a terminal, else generated and printed once); ends the user\'s sessions and enables a disabled user')
    .option('--password <password>', 'the password (visible in the process list: prefer the prompt)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (name, o) => {
      const { userCommandInDatabase } = await import('../cloud/users.ts');
      const { password, generated } = await newPassword(o.password);
      await userCommandInDatabase(dbOf(o), { kind: 'passwd', username: name, password });
      console.log(JSON.stringify({ username: name, ...(generated ? { password } : {}) }));
    });
  withRole(user.command('role <name>'), 'the new role')
    .description('change the role of a user (and the unit of a crew user); takes effect on the user\'s next request')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (name, o) => {
      const { userCommandInDatabase } = await import('../cloud/users.ts');
      const changed = await userCommandInDatabase(dbOf(o), { kind: 'role', username: name, role: o.role, unit: o.unit });
      console.log(JSON.stringify({ username: name, role: o.role, unit: o.unit ?? null, changed }));
    });
  user.command('disable <name>')
    .description('disable a user: no more sign-ins, sessions ended (user passwd enables it again)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (name, o) => {
      const { userCommandInDatabase } = await import('../cloud/users.ts');
      const changed = await userCommandInDatabase(dbOf(o), { kind: 'disable', username: name });
      console.log(changed ? `disabled ${name}` : `${name} was disabled already`);
    });
}

/** `citysteward token create`: API tokens (cloud/tokens.ts), printed once, stored hashed. */
export function registerTokenCommands(program: Command, h: UserCommandHelpers): void {
  const token = program.command('token').description('API tokens');
  token.command('create')
    .description('issue an API token (printed once; stored hashed)')
    .addOption(new Option('--role <role>', 'role of the token').choices(['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator']).makeOptionMandatory())
    .option('--unit <unit>', 'the unit of a crew token')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (o) => {
      if (o.role === 'crew' && !o.unit) throw new CsError('CS_CLI_USAGE', 'a crew token needs --unit UNIT');
      if (o.role !== 'crew' && o.unit) throw new CsError('CS_CLI_USAGE', '--unit applies to crew tokens only');
      const { createTokenInDatabase } = await import('../cloud/tokens.ts');
      console.log(await createTokenInDatabase(dbOf(h, o), o.role, o.unit));
    });
}

/** The cloud's database: from its config file, else the SQLite file in the data directory. */
export function dbOf(h: UserCommandHelpers, o: { config?: string; dataDir: string }): DbOptions {
  return o.config ? h.databaseOf(o.config, o.dataDir) : { kind: 'sqlite', file: resolve(o.dataDir, 'citysteward.db') };
}

/** The password given, else asked twice on a terminal (no echo), else a generated one. */
async function newPassword(given: string | undefined): Promise<{ password: string; generated: boolean }> {
  if (given !== undefined) return { password: given, generated: false };
  if (process.stdin.isTTY) {
    const { promptHidden } = await import('./prompt.ts');
    const first = await promptHidden('password: ');
    const again = await promptHidden('again: ');
    if (first !== again) throw new CsError('CS_CLI_USAGE', 'the two passwords differ');
    return { password: first, generated: false };
  }
  const { generatePassword } = await import('../cloud/users.ts');
  return { password: generatePassword(), generated: true };
}
