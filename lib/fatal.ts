/**
 * The long-running commands' policy for an exception nothing caught (or a promise rejection nothing handled,
 * which Node turns into one): log it as `{ err }` at fatal, then exit with code 70 (EX_SOFTWARE). The process
 * is not resumed: its state after an unexpected throw is unknown (Node's docs on 'uncaughtException'), and
 * its supervisor restarts it (docker-compose `restart: on-failure`; docs/architecture.md#platform-notes).
 * Faults of this kind are fixed where they arise (e.g. gateway/mq-depth.ts); this only makes them visible.
 */
import type { Logger } from './log.ts';

export const UNCAUGHT_EXIT_CODE = 70;

export function exitOnUncaught(logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  process.on('uncaughtException', (err, origin) => {
    logger.fatal({ err, origin }, `${origin === 'unhandledRejection' ? 'unhandled promise rejection' : 'uncaught exception'}: exiting for the supervisor to restart the process`);
    exit(UNCAUGHT_EXIT_CODE);
  });
}
