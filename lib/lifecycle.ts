import type { Logger } from './log.ts';

/**
 * What a composite service has started, to be stopped in reverse order (the last part started
 * depends on the earlier ones). A part that fails to stop is logged and the rest still stop.
 */
export class StopStack {
  private readonly parts: (() => Promise<void>)[] = [];

  constructor(private readonly log: Logger, private readonly owner: string) {}

  push(stop: () => Promise<void>): void {
    this.parts.push(stop);
  }

  async stopAll(): Promise<void> {
    for (const stop of this.parts.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.log.warn({ err }, `${this.owner}: a part failed to stop`);
      }
    }
  }
}
