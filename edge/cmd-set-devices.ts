import { ConfigError } from '../lib/config.ts';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { commandArgs, type CommandHandler } from './commands.ts';
import type { EdgeConfig } from './config.ts';
import { EdgeErrors } from './errors.ts';
import { SetDevicesArgs, withLive, writeLiveConfig } from './live-config.ts';

export { SetDevicesArgs } from './live-config.ts';

export interface SetDevicesDeps {
  dataDir: string;
  now: () => number;
  /** The config the edge runs now. */
  current: () => EdgeConfig;
  /** Validates a whole config (schema and cross-references, edge/config.ts); throws ConfigError. */
  validate: (candidate: EdgeConfig) => EdgeConfig;
  /** Makes `next` the running config and re-plans the buses (buses.ts). */
  apply: (next: EdgeConfig) => Promise<{ added: string[]; removed: string[]; changed: string[] }>;
  logger: Logger;
}

/**
 * `set-devices`: the gateway's buses and devices from the cloud's registry, applied without a restart
 * (docs/architecture.md#live-device-updates). The new lists are checked as a whole config would be (a
 * device of an unknown profile or bus, a unit id taken twice, ...): a bad one is refused whole with
 * every problem named, and the running config goes on. An accepted one is written to devices.json
 * before it is applied and acknowledged (live-config.ts). Commands are applied one at a time, in
 * order; a revision already applied is acknowledged again without change, an older one refused.
 */
export function setDevicesHandler(deps: SetDevicesDeps): CommandHandler {
  let queue: Promise<unknown> = Promise.resolve();
  return (cmd) => {
    const run = queue.then(() => handle(cmd));
    queue = run.catch(() => undefined);
    return run;
  };

  async function handle(cmd: Parameters<CommandHandler>[0]): Promise<{ message: string }> {
    const a = commandArgs(SetDevicesArgs, cmd);
    const cur = deps.current();
    const have = cur.revision ?? 0;
    if (a.revision < have) throw new CsError(EdgeErrors.CMD_REJECTED, `revision ${a.revision} is older than the running revision ${have}: not applied`);
    if (a.revision === have) return { message: `revision ${have} already applied` };
    let next: EdgeConfig;
    try {
      next = deps.validate(withLive(cur, a));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      throw new CsError(EdgeErrors.CMD_REJECTED, `devices refused, revision ${have} keeps running: ${err.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
    }
    writeLiveConfig(deps.dataDir, { revision: a.revision, buses: next.buses, devices: next.devices, command: cmd.id, receivedAt: new Date(deps.now()).toISOString() });
    const diff = await deps.apply(next);
    deps.logger.info({ revision: a.revision, ...diff }, 'devices updated');
    const list = (label: string, ids: string[]) => (ids.length ? `; ${label} ${ids.join(', ')}` : '');
    return {
      message: `revision ${a.revision}: ${next.devices.length} devices on ${next.buses.length} buses${list('added', diff.added)}${list('removed', diff.removed)}${list('changed', diff.changed)}`,
    };
  }
}
