/**
 * A handler is a short pipeline of named steps over one argument (the style of aedes
 * lib/handlers/). A step returns nothing to go on, a promise to go on once it settles,
 * or throws (or rejects) to stop the pipeline with that error. Synchronous steps run
 * without a promise, so a PUBLISH that needs no waiting is answered in the same tick.
 */
export type Step<T> = (arg: T) => void | Promise<void>;

export function runSteps<T>(steps: readonly Step<T>[], arg: T, done: (err: Error | null) => void): void {
  let i = 0;
  const next = (): void => {
    while (i < steps.length) {
      let pending: void | Promise<void>;
      try {
        pending = steps[i++](arg);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (pending && typeof pending.then === 'function') {
        pending.then(next, (err: Error) => done(err));
        return;
      }
    }
    done(null);
  };
  next();
}
