import type { MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.ts';
import type { Outbox, OutboxEntry } from './outbox.ts';

/**
 * The outbox pump: hands committed readings to MQTT in seq order, QoS 1, at most `inflight` awaiting
 * their PUBACK; the PUBACK deletes the entry (docs/architecture.md, the data path). After an outage
 * or a restart it replays what is left.
 *
 * `historical`: a reading is published with `historical: false` only on the connection that was up
 * when it was read (its epoch). Everything read while no connection was up, or left in the outbox by
 * an earlier run, is published with `historical: true`. (A reading already handed to MQTT when the
 * link dropped is retransmitted by MQTT as it was, DUP set; the cloud keeps one copy per (gateway, seq).)
 */

export interface OutboxPump {
  /** Starts pumping from this outbox to this client (the client connects in the background). */
  attach(box: Outbox, client: MqttClient): void;
  /** A new connection is up: readings read from now on are live on it. */
  connected(): void;
  /** A reading was committed to the outbox; live when the client is connected now. */
  accepted(seq: number): void;
  /** Hands pending entries to MQTT while connected and the window has room. */
  pump(): void;
  /** The outbox is closing: no more passes. */
  close(): void;
  /** Resolves true when the outbox is empty and nothing is in flight, or false after `timeoutMs`. */
  drained(timeoutMs: number): Promise<boolean>;
  /** Resolves pending drained() waits no more (stop()). */
  forget(): void;
  readonly inflight: number;
  /** Readings acknowledged by the broker. */
  readonly published: number;
}

export function createOutboxPump(opts: { window: () => number; logger: Logger }): OutboxPump {
  const log = opts.logger;
  let outbox: Outbox | undefined;
  let client: MqttClient | undefined;
  /** seq → connection epoch it was read on (only for readings read while connected). */
  const liveEpoch = new Map<number, number>();
  let epoch = 0;
  const inflight = new Set<number>();
  /** Highest seq handed to MQTT; the next pass reads the outbox after it. -1 rescans from the start. */
  let cursor = -1;
  let pumping = false;
  let pumpAgain = false;
  let closed = false;
  let published = 0;
  const drainWaiters = new Set<() => void>();

  function checkDrained(): void {
    if (outbox && outbox.size() === 0 && inflight.size === 0) for (const w of drainWaiters) w();
  }

  function handOff(mq: MqttClient, entry: OutboxEntry): void {
    const live = liveEpoch.get(entry.seq) === epoch;
    liveEpoch.delete(entry.seq);
    let payload = entry.payload;
    if (!live) {
      const body = JSON.parse(payload) as { historical?: boolean };
      body.historical = true;
      payload = JSON.stringify(body);
    }
    inflight.add(entry.seq);
    cursor = Math.max(cursor, entry.seq);
    // The callback is the PUBACK (QoS 1), also when MQTT resends the packet after a reconnect.
    mq.publish(entry.topic, payload, { qos: 1 }, (err) => {
      inflight.delete(entry.seq);
      if (err) {
        // Not acknowledged and no longer with MQTT (e.g. the client ended): a later pass resends it.
        cursor = -1;
        log.debug({ seq: entry.seq, err: err.message }, 'publish not acknowledged; kept in the outbox');
        return;
      }
      published += 1;
      // Refill the window once the ack is committed: the next pending() then finds no batch to flush,
      // so the acks of one turn share one commit instead of one fsync each.
      void outbox?.ack(entry.seq).then(() => { checkDrained(); pump(); });
    });
  }

  function pump(): void {
    if (pumping) { pumpAgain = true; return; }
    const mq = client;
    const box = outbox;
    if (!mq || !box || closed) return;
    pumping = true;
    void (async () => {
      try {
        do {
          pumpAgain = false;
          const window = opts.window();
          while (mq.connected && client === mq && inflight.size < window) {
            const room = window - inflight.size;
            const batch = (await box.pending(room + (cursor < 0 ? inflight.size : 0), cursor)).filter((e) => !inflight.has(e.seq));
            if (batch.length === 0) break;
            for (const e of batch.slice(0, room)) handOff(mq, e);
          }
        } while (pumpAgain);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'outbox pump failed');
      } finally {
        pumping = false;
      }
    })();
  }

  return {
    attach(box, mq) {
      outbox = box;
      client = mq;
    },
    connected() {
      epoch += 1;
    },
    accepted(seq) {
      if (client?.connected) liveEpoch.set(seq, epoch);
      pump();
    },
    pump,
    close() {
      closed = true;
    },
    async drained(timeoutMs) {
      if (!outbox) return true;
      let w!: () => void;
      const done = new Promise<boolean>((resolve) => { w = () => resolve(true); drainWaiters.add(w); });
      checkDrained();
      const r = await withinMs(done, timeoutMs);
      drainWaiters.delete(w);
      return r ?? false;
    },
    forget() {
      drainWaiters.clear();
    },
    get inflight() { return inflight.size; },
    get published() { return published; },
  };
}

/** Waits for `p` at most `ms`; the timer is always cleared. */
export async function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
