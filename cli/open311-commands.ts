import type { Command } from 'commander';
import { dbOf, type UserCommandHelpers } from './user-commands.ts';

/** `citysteward open311-key create NAME|revoke ID|list`: client apps' Open311 API keys (cloud/open311/keys.ts). */
export function registerOpen311Commands(program: Command, h: UserCommandHelpers): void {
  const key = program.command('open311-key').description('API keys of Open311 client apps (needed to post citizen reports; stored hashed)');
  key.command('create <name>')
    .description('issue a key for a client app (printed once)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (name, o) => {
      const { withKeyStore } = await import('../cloud/open311/keys.ts');
      console.log(JSON.stringify(await withKeyStore(dbOf(h, o), (k) => k.create(name)).then((r) => ({ id: r.id, name, key: r.key }))));
    });
  key.command('revoke <id>')
    .description('revoke a key by its id: its app can no longer post reports')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (id, o) => {
      const { withKeyStore } = await import('../cloud/open311/keys.ts');
      const done = await withKeyStore(dbOf(h, o), (k) => k.revoke(id));
      console.log(done ? `revoked ${id}` : `no key ${id} to revoke (unknown or revoked already)`);
      if (!done) process.exitCode = 1;
    });
  key.command('list')
    .description('list the keys (never the keys themselves)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (o) => {
      const { withKeyStore } = await import('../cloud/open311/keys.ts');
      console.log(JSON.stringify(await withKeyStore(dbOf(h, o), (k) => k.list()), null, 2));
    });
}
