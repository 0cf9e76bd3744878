import { Aedes } from 'aedes';
import { describe, expect, it } from 'vitest';
import { boundDispatchDepth } from '../../gateway/mq-depth.ts';

interface Emitter {
  current: number;
  length: number;
  on(topic: string, fn: (message: unknown, cb: () => void) => void): void;
  emit(message: { topic: string }, cb: () => void): void;
}

/** 100 subscribed messages holding Aedes' 100 places, then `n` no one subscribes to, queued behind them. */
function queueBehind(mq: Emitter, n: number): Promise<number[]> {
  const order: number[] = [];
  mq.on('held', (_m, cb) => setImmediate(cb));
  return new Promise((resolve) => {
    const push = (v: number) => { order.push(v); if (order.length === 100 + n) resolve(order); };
    for (let i = 0; i < 100; i++) mq.emit({ topic: 'held' }, () => push(-1));
    for (let i = 0; i < n; i++) mq.emit({ topic: 'nobody' }, () => push(i));
  });
}

describe('the broker emitter\'s queue (mq-depth.ts)', () => {
  it('walks 30,000 queued unsubscribed messages in order without overflowing the stack, and gives every place back', async () => {
    const broker = await Aedes.createBroker();
    try {
      const mq = boundDispatchDepth((broker as unknown as { mq: Emitter }).mq);
      const order = await queueBehind(mq, 30_000);
      expect(order.length).toBe(30_100);
      expect(order.filter((v) => v >= 0).every((v, i) => v === i)).toBe(true);
      // A place taken back for a deferred dispatch is given back on the next turn.
      await new Promise((r) => setImmediate(r));
      expect(mq.current).toBe(0);
      expect(mq.length).toBe(0);
    } finally {
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });

  it('leaves an emitter of another kind as it is', () => {
    const other = { emit: () => undefined };
    expect(boundDispatchDepth(other)).toBe(other);
    expect(Object.keys(other)).toEqual(['emit']);
  });
});
