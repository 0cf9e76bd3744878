import { Reading } from '../lib/messages.ts';
import { breachEvents } from './cases/index.ts';
import { createBatcher, type BatchObserver, type BatchOptions, type CommittedSink } from './ingest-batch.ts';
import { createIntake, Rejection, type IngestOutcome, type IntakeCounters, type IntakeRejectReason, type PipelineDeps, type Registered } from './intake.ts';
import { checkTime, checkValues, DEFAULT_READING_LIMITS, type ReadingLimits } from './reading-check.ts';

/**
 * Ingest of one reading, as a short pipeline of named steps:
 * topic -> size -> JSON -> schema -> device -> plausible (time, points) -> store (idempotent on
 * gateway+stream+device+seq; the same key with another payload is a counted, logged conflict) -> evaluate -> cases.
 * The steps up to the device are cloud/intake.ts, shared with edge alarms. A bad payload is counted
 * by reason and logged (rate-limited per gateway), never thrown. Checked readings are stored in
 * batches (cloud/ingest-batch.ts, docs/architecture.md#ingest): the store, the rules and the cases
 * of a batch run in ONE write transaction, and `ingest` resolves after it committed: a crash
 * leaves either all or nothing, so a redelivered reading is either a duplicate of a fully handled
 * one or handled afresh.
 */

export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type RejectReason = IntakeRejectReason
  | 'ts-future' | 'ts-too-old' | 'unknown-point' | 'point-type';

export type { AlarmChange } from './cases/index.ts';

export type IngestResult = IngestOutcome<RejectReason>;

export interface IngestStats extends IntakeCounters {
  casesOpened: number;
  casesUpdated: number;
}

export { DEFAULT_WARN_LIMIT, type WarnLimit } from './intake.ts';

export interface IngestDeps extends PipelineDeps {
  /** Plausible time of a reading (DEFAULT_READING_LIMITS when omitted). */
  limits?: Partial<ReadingLimits>;
  /** Group commit: readings per transaction and wait (DEFAULT_BATCH when omitted). */
  batch?: Partial<BatchOptions>;
  /** Ingest latency and batch commit times (cloud/metrics.ts). */
  observe?: BatchObserver;
  /** Told the readings each batch stored, after its commit (cloud/influx/sink.ts). */
  sink?: CommittedSink;
}

export interface Ingestor {
  /** Resolves once the reading's batch has committed (or it was rejected, or failed): acknowledge then. */
  ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult>;
  stats(): IngestStats;
  /** Stores the readings queued for the next batch now and waits for them. */
  flush(): Promise<void>;
  /**
   * Seeds the rule engine with the alarms active in the database and repairs a device whose
   * latest reading lies in the future (stored before ts was checked); call after migrating.
   * With `which`, only the alarms of the devices it picks (a stream partition taken, docs/architecture.md#partitions).
   */
  seed(which?: (device: string) => boolean): Promise<void>;
  /** Logs what the warning limit still holds back. */
  close(): void;
}

export function createIngestor(deps: IngestDeps): Ingestor {
  const { database, now, logger } = deps;
  const counters: IngestStats = { stored: 0, duplicates: 0, conflicts: 0, rejected: {}, failed: 0, casesOpened: 0, casesUpdated: 0, warningsSuppressed: 0 };
  const limits: ReadingLimits = { ...DEFAULT_READING_LIMITS, ...deps.limits };
  const intake = deps.intake ?? createIntake(deps);
  const batcher = createBatcher(deps, deps.batch, deps.observe, deps.sink);
  const spec = { kind: 'up' as const, what: 'reading', maxBytes: MAX_PAYLOAD_BYTES, schema: Reading };

  function checkPlausible(reg: Registered, reading: Reading, ts: number): void {
    const problem = checkTime(ts, reading.ts, now(), limits) ?? checkValues(reading.values, reg.profile);
    if (problem) throw new Rejection(problem.reason, problem.message);
  }

  function publish(reg: Registered, result: Extract<IngestResult, { status: 'stored' }>): void {
    for (const e of breachEvents(reg.device, now(), result.cases, result.alarms)) deps.events.emit(e);
  }

  // ---- pipeline ----------------------------------------------------------------------------

  function ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult> {
    const receivedAt = performance.now();
    return intake.guard<IngestResult, RejectReason>(spec, gateway, topic, counters, async ({ log, checked }) => {
      const { reg, body: reading } = intake.decode(spec, gateway, topic, payload);
      const ts = Date.parse(reading.ts);
      checkPlausible(reg, reading, ts);
      checked();
      const result = await batcher.submit({ gateway, reg, reading, ts, log, receivedAt });
      if (result.status === 'duplicate') {
        counters.duplicates++;
        log.debug({ seq: reading.seq }, 'duplicate reading ignored');
      } else if (result.status === 'conflict') {
        counters.conflicts++;
        intake.warn(gateway, counters, log, { stream: result.stream, seq: result.seq, storedHash: result.storedHash, hash: result.hash },
          `conflicting reading: (${gateway}, ${result.stream || "''"}, ${result.device}, ${result.seq}) was stored with other values; the first is kept`);
      } else if (result.status === 'stored') {
        counters.stored++;
        for (const c of result.cases) c.action === 'opened' ? counters.casesOpened++ : counters.casesUpdated++;
        if (result.cases.length || result.alarms.length) publish(reg, result);
      }
      return result;
    });
  }

  /**
   * A device whose latest reading lies beyond now + skew (stored before ts was checked) gets back
   * its newest plausible reading as latest, or no latest at all when it has none.
   */
  async function repairFutureLatest(): Promise<void> {
    const limit = now() + limits.maxSkewMs;
    const poisoned = await database.db.selectFrom('device_state').select(['device', 'last_ts']).where('last_ts', '>', limit).execute();
    for (const p of poisoned) {
      await database.write(async (trx) => {
        const best = await trx.selectFrom('readings').select(['seq', 'ts', 'values_json', 'quality'])
          .where('device', '=', p.device).where('ts', '<=', limit).orderBy('ts', 'desc').orderBy('received_at', 'desc').limit(1).executeTakeFirst();
        if (best) {
          await trx.updateTable('device_state').set({ last_seq: best.seq, last_ts: best.ts, last_values: best.values_json, last_quality: best.quality })
            .where('device', '=', p.device).execute();
        } else {
          await trx.deleteFrom('device_state').where('device', '=', p.device).execute();
        }
      });
      logger.warn({ device: p.device, futureTs: new Date(Number(p.last_ts)).toISOString() }, 'latest reading lay in the future; repaired to the newest plausible one');
    }
  }

  return {
    ingest,
    stats: () => ({ ...counters, rejected: { ...counters.rejected } }),
    flush: () => batcher.flush(),
    close: () => intake.close(),
    async seed(which) {
      if (!which) await repairFutureLatest();
      const active = await database.db.selectFrom('alarms').select(['device', 'hazard']).where('cleared_at', 'is', null).execute();
      const profileOf = new Map(deps.district.devices.map((d) => [d.id, d.profile]));
      for (const a of active) {
        const profile = profileOf.get(a.device);
        // At start (no `which`) the configuration in force is loaded; a partition taken over may run under a
        // rule set a moment behind another worker's, so an unwatched hazard is not cleared on that view.
        if (profile && (!which || which(a.device))) deps.engine.seedActive(a.device, profile, a.hazard, undefined, !which);
      }
    },
  };
}
