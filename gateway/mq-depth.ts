/**
 * Aedes routes every PUBLISH through its mqemitter (the in-memory one, or mqemitter-redis in a cluster,
 * which inherits it), at most `concurrency` (100) messages at a time; the others wait in the emitter's
 * queue. Each message finished takes the next one from within its own completion
 * (released() -> _do() -> fastparallel -> released() ...), and a message no subscription matches completes
 * synchronously: a queue of such messages is walked by recursion, one stack level per message. Under a
 * fan-in burst (a few hundred subscribed messages holding the 100 places, thousands of unsubscribed ones
 * behind them, e.g. health messages, or readings left queued when the subscriber goes) the stack
 * overflowed, `RangeError: Maximum call stack size exceeded`, and the process died (docs/architecture.md#platform-notes).
 *
 * We cannot change Aedes or mqemitter; we bound the recursion on the broker's emitter instance: past
 * MAX_DEPTH nested dispatches, the message goes back to the head of the queue and the queue goes on from
 * setImmediate, on a fresh stack: messages are still dispatched in the order they were emitted. Not nested (the usual case),
 * a dispatch costs one counter increment.
 */

/** Nested dispatches allowed before the next is deferred; each is 3 frames. */
export const MAX_DISPATCH_DEPTH = 64;

interface QueuedEmitter {
  current: number;
  _messageQueue: unknown[];
  _messageCallbacks: unknown[];
  /** Gives a place back and dispatches the queue's first message, if any (mqemitter's `released`). */
  _released(): void;
  _do(this: QueuedEmitter, message: unknown, callback: unknown): unknown;
}

/** Bounds the synchronous recursion of an mqemitter (or a subclass) instance's queue; returns it. */
export function boundDispatchDepth<T>(mq: T, maxDepth = MAX_DISPATCH_DEPTH): T {
  const emitter = mq as unknown as QueuedEmitter;
  const dispatch = emitter._do;
  // Another emitter (an `mq` option of another kind): nothing of this kind to bound.
  if (typeof dispatch !== 'function' || typeof emitter._released !== 'function' || typeof emitter.current !== 'number'
    || !Array.isArray(emitter._messageQueue) || !Array.isArray(emitter._messageCallbacks)) return mq;
  let depth = 0;
  emitter._do = function boundedDo(message, callback) {
    if (depth >= maxDepth) {
      // Back to the head of the queue, so that no later message overtakes it (another finishing
      // message takes it first), and the place released() gave back taken again until setImmediate
      // gives it back and dispatches the head, on a fresh stack.
      this._messageQueue.unshift(message);
      this._messageCallbacks.unshift(callback);
      this.current++;
      setImmediate(() => this._released());
      return this;
    }
    depth++;
    try {
      return dispatch.call(this, message, callback);
    } finally {
      depth--;
    }
  };
  return mq;
}
