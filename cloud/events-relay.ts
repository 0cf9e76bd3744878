/**
 * Events across cloud workers (docs/architecture.md#partitions): each worker appends the events it
 * emits to the Redis Stream `{stream}:events` (capped, about 10,000 entries) and reads the others'
 * from it, handing them to its live streams (`GET /api/events`) through the bus's `relay`. A worker
 * skips its own entries (its clients had them from the bus), so each SSE client gets an event once.
 * A stream rather than pub/sub: a worker whose Redis connection drops for a moment reads on from
 * the last entry it saw, missing nothing still in the stream.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../lib/log.ts';
import type { CsEvent, EventBus } from './events.ts';

export interface EventRelayOptions {
  url: string;
  /** Key of the events stream, e.g. `cs:readings:events`. */
  key: string;
  /** This worker's name (the stream consumer's). */
  worker: string;
  bus: EventBus;
  logger: Logger;
  maxLen?: number;
  blockMs?: number;
}

export interface EventRelay {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createEventRelay(o: EventRelayOptions): EventRelay {
  const maxLen = String(o.maxLen ?? 10_000);
  const blockMs = String(o.blockMs ?? 1000);
  let writer: Redis | undefined;
  let reader: Redis | undefined;
  let unsubscribe: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let stopping = false;
  let last = '$';

  async function read(): Promise<void> {
    let backoff = 100;
    while (!stopping) {
      try {
        const res = await reader!.xread('COUNT', 500, 'BLOCK', blockMs, 'STREAMS', o.key, last) as [string, [string, string[]][]][] | null;
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          last = id;
          const origin = fields[fields.indexOf('origin') + 1];
          if (origin === o.worker) continue;
          try {
            o.bus.relay(JSON.parse(fields[fields.indexOf('event') + 1]) as CsEvent);
          } catch (err) {
            o.logger.warn({ err: (err as Error).message, id }, 'relayed event unreadable; skipped');
          }
        }
        backoff = 100;
      } catch (err) {
        if (stopping) break;
        o.logger.warn({ err: (err as Error).message }, 'events relay read failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  return {
    async start() {
      const opts = { maxRetriesPerRequest: null, lazyConnect: true } as const;
      writer = new Redis(o.url, opts);
      reader = new Redis(o.url, opts);
      for (const r of [writer, reader]) r.on('error', (err) => { if (!stopping) o.logger.warn({ err: err.message }, 'events relay redis error'); });
      await Promise.all([writer.connect(), reader.connect()]);
      // Start after the newest entry: a worker's clients get the events from its start on.
      const newest = await writer.xrevrange(o.key, '+', '-', 'COUNT', 1);
      last = newest[0]?.[0] ?? '0-0';
      const w = writer;
      unsubscribe = o.bus.subscribe((e) => {
        w.xadd(o.key, 'MAXLEN', '~', maxLen, '*', 'origin', o.worker, 'event', JSON.stringify(e))
          .catch((err: Error) => o.logger.warn({ err: err.message, type: e.type }, 'event not relayed to the other workers'));
      });
      loop = read();
    },
    async stop() {
      if (!reader || stopping) return;
      stopping = true;
      unsubscribe?.();
      reader.disconnect();
      await loop;
      await writer!.quit().catch(() => writer!.disconnect());
      reader = writer = undefined;
    },
  };
}
