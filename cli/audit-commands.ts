import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { UserCommandHelpers } from './user-commands.ts';

/**
 * `citysteward audit verify`: recompute every case-history chain, the emergency log, the credential log and the configuration log
 * (docs/architecture.md#audit-chains); prints the report as JSON and exits 1 when a chain is broken.
 */
export function registerAuditCommands(program: Command, h: UserCommandHelpers): void {
  const audit = program.command('audit').description('check the tamper-evident records');
  audit.command('verify')
    .description('recompute every case history chain, the emergency log, the credential log and the configuration log; name the first row of each altered, deleted or inserted out of place (exit 1 if any)')
    .addOption(h.configOption(false))
    .addOption(h.dataDirOption())
    .action(async (o) => {
      const { openDatabase } = await import('../cloud/db/database.ts');
      const { verifyAudit } = await import('../cloud/audit/verify.ts');
      const database = openDatabase(o.config ? h.databaseOf(o.config, o.dataDir) : { kind: 'sqlite', file: resolve(o.dataDir, 'citysteward.db') });
      try {
        await database.migrate();
        const report = await verifyAudit(database.db);
        console.log(JSON.stringify(report, null, 2));
        if (!report.ok) process.exitCode = 1;
      } finally {
        await database.close();
      }
    });
}
