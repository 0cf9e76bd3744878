import { Type } from '@sinclair/typebox';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { PollModeT } from '../lib/vocabulary.ts';
import { commandArgs, type CommandHandler } from './commands.ts';
import type { EdgeConfig } from './config.ts';
import { EdgeErrors } from './errors.ts';
import { writeMode, type EdgeMode } from './mode.ts';

/** Arguments of `set-mode` (the envelope is lib/messages.ts Command). */
export const SetModeArgs = Type.Object({
  mode: PollModeT,
  pollMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
  heartbeatMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 86_400_000 })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
});

export interface SetModeDeps {
  dataDir: string;
  now: () => number;
  /** The fast-mode defaults of the gateway's config. */
  fast: () => EdgeConfig['fast'];
  /** Re-times the pollers and arms the `until` timer. */
  apply: (mode: EdgeMode) => void;
  logger: Logger;
}

/**
 * `set-mode`: fast (emergency) or normal polling, optionally until an instant. The mode is written to
 * mode.json before it is applied and acknowledged: an acknowledged mode survives a restart (mode.ts).
 */
export function setModeHandler(deps: SetModeDeps): CommandHandler {
  return async (cmd) => {
    const a = commandArgs(SetModeArgs, cmd);
    const now = deps.now();
    if (a.until && Date.parse(a.until) <= now) throw new CsError(EdgeErrors.CMD_REJECTED, `until ${a.until} is in the past`);
    const since = new Date(now).toISOString();
    const fast = deps.fast();
    const next: EdgeMode = a.mode === 'fast'
      ? { mode: 'fast', pollMs: a.pollMs ?? fast.pollMs, heartbeatMs: a.heartbeatMs ?? fast.heartbeatMs, ...(a.until ? { until: a.until } : {}), since, command: cmd.id }
      : { mode: 'normal', since, command: cmd.id };
    writeMode(deps.dataDir, next);
    deps.apply(next);
    deps.logger.info({ mode: next.mode, pollMs: next.pollMs, until: next.until }, 'mode set');
    return { message: next.mode === 'fast' ? `fast: poll every ${next.pollMs} ms, heartbeat ${next.heartbeatMs} ms` : 'normal' };
  };
}
