/** Polls `cond` until it holds, or rejects after `timeoutMs`. */
export async function eventuallyTrue(cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs a long-lived service until SIGINT/SIGTERM, then stops it cleanly. */
export async function runUntilSignal(stop: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolveSignal) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveSignal();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await stop();
}
