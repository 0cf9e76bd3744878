import { Type } from '@sinclair/typebox';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { PointValue } from '../lib/messages.ts';
import { commandArgs, type CommandHandler } from './commands.ts';
import { EdgeErrors } from './errors.ts';
import type { BusPoller } from './poller.ts';

/** Arguments of `write-point` (the envelope is lib/messages.ts Command). */
export const WritePointArgs = Type.Object({
  device: Type.String({ minLength: 1 }),
  point: Type.String({ minLength: 1 }),
  value: PointValue,
});

/**
 * `write-point`: encodes the value with the profile's codec and writes it on the device's bus
 * (poller.ts refuses a point the profile does not mark writable), then reports the device at once,
 * so the cloud sees what the write did.
 */
export function writePointHandler(deps: { gateway: string; pollers: () => Iterable<BusPoller>; logger: Logger }): CommandHandler {
  return async (cmd) => {
    const a = commandArgs(WritePointArgs, cmd);
    const poller = [...deps.pollers()].find((p) => p.hasDevice(a.device));
    if (!poller) throw new CsError(EdgeErrors.CMD_REJECTED, `gateway ${deps.gateway} has no device "${a.device}"`);
    await poller.write(a.device, a.point, a.value);
    deps.logger.info({ device: a.device, point: a.point, value: a.value }, 'point written');
    await poller.pollDevice(a.device, true);
    return { message: `${a.device}.${a.point} written` };
  };
}
