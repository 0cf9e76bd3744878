import { describe, expect, it } from 'vitest';
import { createMemoryOutbox, type Outbox } from '../../edge/outbox.ts';

/**
 * The contract every outbox implementation runs (after aedes-persistence abstract.js):
 * the durable outbox of a later issue adds itself to the list below.
 */
const implementations: [string, () => Promise<Outbox>][] = [
  ['memory', async () => createMemoryOutbox()],
];

const entry = (seq: number) => ({ seq, topic: `cs/v1/gw/up/d${seq}`, payload: JSON.stringify({ seq }) });

for (const [name, make] of implementations) {
  describe(`outbox contract: ${name}`, () => {
    it('keeps appended entries until they are acknowledged', async () => {
      const box = await make();
      await box.append(entry(1));
      await box.append(entry(2));
      expect(box.size()).toBe(2);
      await box.ack(1);
      expect(await box.pending()).toEqual([entry(2)]);
      await box.close();
    });

    it('hands pending entries out oldest first, however they were appended and acknowledged', async () => {
      const box = await make();
      for (const seq of [5, 3, 9, 4]) await box.append(entry(seq));
      await box.ack(9);
      expect((await box.pending()).map((e) => e.seq)).toEqual([3, 4, 5]);
      expect((await box.pending(2)).map((e) => e.seq)).toEqual([3, 4]);
      await box.close();
    });

    it('ignores an acknowledgement of an unknown or already acknowledged entry', async () => {
      const box = await make();
      await box.append(entry(1));
      await box.ack(1);
      await box.ack(1);
      await box.ack(42);
      expect(box.size()).toBe(0);
      expect(await box.pending()).toEqual([]);
      await box.close();
    });
  });
}
