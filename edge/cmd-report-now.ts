import type { CommandHandler } from './commands.ts';

/**
 * `report-now`: polls every device now and publishes each reading whatever the deadbands say;
 * acknowledged once the readings are in the outbox.
 */
export function reportNowHandler(deps: { pollAll: (forced: boolean) => Promise<void> }): CommandHandler {
  return async () => {
    await deps.pollAll(true);
  };
}
