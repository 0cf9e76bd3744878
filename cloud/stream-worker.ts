import { gatewayOf, type District } from '../devices/district.ts';
import { CsError } from '../lib/errors.ts';
import type { Logger } from '../lib/log.ts';
import { partitionOf } from '../lib/partition.ts';
import type { Ingestor } from './ingest.ts';
import type { RuleEngine } from './rules.ts';
import { createEventRelay } from './events-relay.ts';
import type { EventBus } from './events.ts';
import { createStreamConsumer, StreamErrors, type StreamConsumer, type StreamSourceOptions } from './stream.ts';

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
 * the relay of live events to and from the other workers (`{stream}:events`, cloud/events-relay.ts).
 */
export function streamWorker(source: StreamSourceOptions, deps: WorkerDeps): StreamConsumer {
  const logger = deps.logger.child({ mod: 'stream' });
  const relay = createEventRelay({ url: source.url, key: `${source.stream}:events`, worker: source.consumer, bus: deps.events, logger: deps.logger.child({ mod: 'events-relay' }) });
  const consumer = createStreamConsumer({
    options: source,
    logger,
    // As over MQTT: rejected readings are acknowledged, failed ones stay pending for redelivery.
    handle: async (e) => (await deps.ingest(e.gateway, e.topic, e.payload)).status !== 'failed',
    moved: partitionMoves({ ...deps, partitions: source.partitions ?? 1, logger }),
  });
  return {
    async start() {
      await relay.start().catch((err: Error) => {
        throw new CsError(StreamErrors.UNAVAILABLE, `cannot relay events through redis at ${source.url}: ${err.message}`);
      });
      await consumer.start().catch(async (err) => { await relay.stop(); throw err; });
    },
    async stop() {
      await consumer.stop();
      await relay.stop();
    },
    stats: () => consumer.stats(),
  };
}

/**
 * What a worker does when a stream partition comes or goes (docs/architecture.md#partitions): the
 * rule state of the partition's devices is dropped either way, since another worker judged (or
 * will judge) their readings meanwhile; when it comes, their active alarms are seeded again from
 * the database, so an alarm raised elsewhere is not raised twice. Hold times and rate windows
 * restart with the next readings.
 */
export function partitionMoves(deps: { engine: RuleEngine; ingestor: Ingestor; district: District; partitions: number; logger: Logger }) {
  const n = deps.partitions;
  const deviceGateway = (device: string): string | undefined => {
    const d = deps.district.devices.find((x) => x.id === device);
    return d && gatewayOf(deps.district, d);
  };
  const inPartition = (p: number) => (device: string, gateway?: string): boolean => {
    const gw = gateway ?? deviceGateway(device);
    return gw !== undefined && partitionOf(gw, n) === p;
  };
  return async (p: number, owned: boolean): Promise<void> => {
    const which = inPartition(p);
    const dropped = deps.engine.forget(which);
    if (owned) await deps.ingestor.seed((device) => which(device));
    deps.logger.info({ partition: p, owned, dropped: dropped.length }, owned ? 'partition taken: rule state seeded from the active alarms' : 'partition gone: rule state dropped');
  };
}
