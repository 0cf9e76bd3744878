import { indexOf } from './registry/view.ts';
import { gatewayOf, type District } from '../devices/district.ts';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { partitionOf } from '../lib/partition.ts';
import type { Ingestor } from './ingest.ts';
import type { RuleEngine } from './rules.ts';
import { createEventRelay } from './events-relay.ts';
import type { EventBus } from './events.ts';
import { createStreamConsumer, StreamErrors, type StreamConsumer, type StreamSourceOptions } from './stream.ts';
import { createRuleStateStore, type RuleStateStore } from './stream-rule-state.ts';

interface WorkerDeps {
  engine: RuleEngine;
  ingestor: Ingestor;
  district: District;
  logger: Logger;
  events: EventBus;
  /** Every ingest path's entry (cloud/app.ts): resolves the outcome's status. */
  ingest(gateway: string, topic: string, payload: Buffer): Promise<{ status: string }>;
}

/**
 * A cloud worker's consumer of the readings stream, wired to the ingest and the rule engine, with
 * the rule state of its partitions kept in Redis (cloud/stream-rule-state.ts) and the relay of live
 * events to and from the other workers (`{stream}:events`, cloud/events-relay.ts).
 */
export function streamWorker(source: StreamSourceOptions, deps: WorkerDeps): StreamConsumer {
  const logger = deps.logger.child({ mod: 'stream' });
  const relay = createEventRelay({ url: source.url, key: `${source.stream}:events`, worker: source.consumer, bus: deps.events, logger: deps.logger.child({ mod: 'events-relay' }) });
  const states = createRuleStateStore({ url: source.url, stream: source.stream, consumer: source.consumer, logger });
  const moves = partitionMoves({ ...deps, partitions: source.partitions ?? 1, logger, states });
  const consumer = createStreamConsumer({
    options: source,
    logger,
    // As over MQTT: rejected readings are acknowledged, failed ones stay pending for redelivery.
    handle: async (e) => (await deps.ingest(e.gateway, e.topic, e.payload)).status !== 'failed',
    moved: moves.moved,
    handled: moves.handled,
  });
  return {
    async start() {
      await relay.start().catch((err: Error) => {
        throw new CsError(StreamErrors.UNAVAILABLE, `cannot relay events through redis at ${source.url}: ${err.message}`);
      });
      await consumer.start().catch(async (err) => { await relay.stop(); await states.close(); throw err; });
    },
    async stop() {
      await consumer.stop();
      await relay.stop();
      await states.close();
    },
    stats: () => consumer.stats(),
  };
}

/**
 * What a worker does when a stream partition comes or goes (docs/architecture.md#partitions):
 * - after each batch of a partition it holds, the rule state of the devices that batch moved is saved;
 * - when a partition goes, the state of its devices is dropped here (the next owner judges them);
 * - when one comes, their saved state is loaded (where the last owner left off), and their alarms
 *   are seeded from the database, so an alarm raised elsewhere is not raised twice.
 */
export function partitionMoves(deps: { engine: RuleEngine; ingestor: Ingestor; district: District; partitions: number; logger: Logger; states: RuleStateStore }) {
  const n = deps.partitions;
  // The live registry (cloud/registry/view.ts): a device added or moved is judged on its gateway now.
  const deviceGateway = (device: string): string | undefined => indexOf(deps.district).gatewayOf.get(device);
  const inPartition = (p: number) => (device: string, gateway?: string): boolean => {
    const gw = gateway ?? deviceGateway(device);
    return gw !== undefined && partitionOf(gw, n) === p;
  };
  return {
    async moved(p: number, owned: boolean): Promise<void> {
      const which = inPartition(p);
      const dropped = deps.engine.forget(which);
      if (!owned) {
        deps.logger.info({ partition: p, dropped: dropped.length }, 'partition gone: rule state dropped');
        return;
      }
      const saved = await deps.states.load(p).catch((err: Error) => {
        deps.logger.warn({ err: err.message, partition: p }, 'saved rule state not read: hold times and rate windows restart');
        return new Map();
      });
      for (const [device, snap] of saved) deps.engine.importState(device, snap);
      await deps.ingestor.seed((device) => which(device));
      deps.engine.takeChanged(which); // as loaded: nothing new to save
      deps.logger.info({ partition: p, restored: saved.size }, 'partition taken: rule state restored, alarms seeded');
    },
    async handled(p: number, fence: number): Promise<void> {
      const devices = deps.engine.takeChanged(inPartition(p));
      const snaps = devices.flatMap((d) => {
        const s = deps.engine.exportState(d);
        return s ? [[d, s] as [string, NonNullable<typeof s>]] : [];
      });
      let saved: boolean;
      try {
        saved = await deps.states.save(p, fence, snaps);
      } catch (err) {
        // Saved at the next batch instead: a device whose state then stays still would otherwise never be.
        deps.engine.markChanged(devices);
        throw err;
      }
      if (!saved) deps.logger.warn({ partition: p, fence }, 'rule state not saved: the partition lease is gone');
    },
  };
}
