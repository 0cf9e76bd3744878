import type { Kysely } from 'kysely';
import type { Logger } from '../lib/log.ts';
import type { Reading } from '../lib/messages.ts';
import type { Breach } from './rules.ts';
import { recordBreach, recordClear, type AlarmChange, type CaseChange } from './cases/index.ts';
import type { IngestOutcome, PipelineDeps, Registered } from './intake.ts';
import { readingHash } from './reading-check.ts';
import type { DB } from './db/schema.ts';
import { recordRollups, type RolledReading } from './db/rollups.ts';
import { foldState, insertReadings, priorReadings, upsertDeviceStates, type DeviceStateRow, type PriorReading, type ReadingRow } from './db/reading-store.ts';

/**
 * Group commit (docs/architecture.md#ingest): checked readings queue here and are stored in one
 * write transaction per batch: up to `maxReadings`, or what arrived within `maxDelayMs` of the
 * first. Inside it, each reading in arrival order is inserted (idempotent on gateway+stream+device+seq),
 * judged by the rules and its breaches recorded, exactly as one reading's transaction did; the
 * devices' latest values are upserted once per device and the rollups once per touched bucket at the end. A reading's promise settles
 * after the commit, so its acknowledgement never precedes it. A batch that fails is undone
 * (rule transitions included) and its readings retried one transaction each: the good ones are
 * stored, the bad one fails alone. Batches run one at a time, in order.
 */

export interface BatchOptions {
  /** Readings per transaction at most; default 1000. */
  maxReadings: number;
  /** Longest wait for a batch to fill after its first reading, ms; default 2. */
  maxDelayMs: number;
}

export const DEFAULT_BATCH: BatchOptions = { maxReadings: 1000, maxDelayMs: 2 };

export type Stored = Extract<IngestOutcome<string>, { status: 'stored' | 'duplicate' | 'conflict' }>;

export interface Queued {
  gateway: string; reg: Registered; reading: Reading; ts: number; log: Logger;
  /** performance.now() when the message arrived (the ingest latency runs from here to the commit). */
  receivedAt?: number;
}

/** Timings for the metrics (cloud/metrics.ts), in ms: each committed reading's receive-to-commit, each batch's transaction. */
export interface BatchObserver {
  committed(latencyMs: number): void;
  batch(ms: number, readings: number): void;
}

export interface Batcher {
  /** Settles after the transaction holding the reading committed (or rejects with why it was not stored). */
  submit(q: Queued): Promise<Stored>;
  /** Stores what is queued now and waits for it. */
  flush(): Promise<void>;
}

type Item = Queued & { resolve(s: Stored): void; reject(err: unknown): void };

/** What the rules made of one reading (cloud/rules.ts), to be recorded in the batch's transaction. */
type Judged = { breaches: Breach[]; raised: Breach[]; cleared: string[]; emergency: boolean };

/** A lock held by another connection or process, worth a second try of the whole batch. */
const TRANSIENT = /SQLITE_BUSY|database is locked|deadlock detected|could not serialize/;
const BUSY_RETRIES = 3;

/** Readings a batch stored (not duplicates), told after the commit and before they settle (the InfluxDB sink's queue). */
export type CommittedSink = (readings: { device: string; gateway: string; kind: string; ts: number; values: Record<string, unknown> }[]) => void;

export function createBatcher(deps: PipelineDeps, options: Partial<BatchOptions> = {}, observe?: BatchObserver, sink?: CommittedSink): Batcher {
  const { database, now } = deps;
  const maxReadings = Math.max(1, Math.floor(options.maxReadings ?? DEFAULT_BATCH.maxReadings));
  const maxDelayMs = Math.max(0, options.maxDelayMs ?? DEFAULT_BATCH.maxDelayMs);
  let queue: Item[] = [];
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();

  function cut(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = undefined;
    while (queue.length) {
      const batch = queue.length <= maxReadings ? queue : queue.slice(0, maxReadings);
      queue = queue.length <= maxReadings ? [] : queue.slice(maxReadings);
      chain = chain.then(() => run(batch));
    }
    return chain;
  }

  async function run(batch: Item[], attempt = 0): Promise<void> {
    const undo: (() => void)[] = [];
    try {
      const t0 = performance.now();
      const out = await database.write((trx) => storeAll(trx, batch, undo));
      if (observe) {
        const t = performance.now();
        observe.batch(t - t0, batch.length);
        for (const it of batch) if (it.receivedAt !== undefined) observe.committed(t - it.receivedAt);
      }
      if (sink) tellSink(batch, out);
      batch.forEach((it, i) => it.resolve(out[i]));
    } catch (err) {
      // Not committed: forget the rule transitions so that the retry (or redelivery) makes them again.
      for (const u of undo.reverse()) u();
      if (attempt < BUSY_RETRIES && TRANSIENT.test(String((err as Error)?.message))) {
        await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
        return run(batch, attempt + 1);
      }
      if (batch.length === 1) return batch[0].reject(err);
      batch[0].log.warn({ err: (err as Error)?.message, readings: batch.length }, 'batch of readings failed; storing them one by one');
      for (const it of batch) await run([it], BUSY_RETRIES);
    }
  }

  function tellSink(batch: Item[], out: Stored[]): void {
    const rows = batch.flatMap((it, i) => (out[i].status === 'stored'
      ? [{ device: it.reading.device, gateway: it.gateway, kind: it.reg.profile.kind, ts: it.ts, values: it.reading.values }] : []));
    // The readings are stored: a sink failure (disk full) is logged and never fails them.
    try { if (rows.length) sink!(rows); } catch (err) { batch[0].log.error({ err: (err as Error)?.message }, 'InfluxDB queue append failed'); }
  }

  async function storeAll(trx: Kysely<DB>, batch: Item[], undo: (() => void)[]): Promise<Stored[]> {
    const at = now();
    const rows: ReadingRow[] = batch.map(({ gateway, reading, ts }) => ({
      gateway, stream: reading.stream ?? '', seq: reading.seq, device: reading.device, ts, received_at: at,
      values_json: JSON.stringify(reading.values), quality: reading.quality, historical: reading.historical ? 1 : 0,
    }));
    const stored = await insertReadings(database, trx, rows);
    // Redeliveries are looked up together, not one query each.
    const redelivered = rows.filter((_, i) => !stored[i]);
    const priors = await priorReadings(database, trx, redelivered);
    const latest = new Map<string, DeviceStateRow>();
    const out: Stored[] = [];
    const rolled: RolledReading[] = [];
    for (let i = 0, p = 0; i < batch.length; i++) {
      const row = rows[i];
      if (!stored[i]) {
        out.push(priorOutcome(batch[i], row, priors[p++]));
        continue;
      }
      rolled.push({ device: row.device, ts: row.ts, values: batch[i].reading.values });
      foldState(latest, { device: row.device, gateway: row.gateway, last_seq: row.seq, last_ts: row.ts, last_values: row.values_json, last_quality: row.quality, last_seen: at });
      const judged = judge(batch[i], undo);
      // Most readings breach and clear nothing: no statement, no await.
      out.push(judged.breaches.length || judged.cleared.length ? await record(trx, batch[i], at, judged) : storedOutcome(batch[i]));
    }
    // Rollups of the readings this batch inserted (replayed ones too; duplicates are not counted again).
    await recordRollups(database, trx, rolled);
    await upsertDeviceStates(database, trx, [...latest.values()]);
    return out;
  }

  /** Redelivery is normal (at least once); the same key with other values is not. */
  function priorOutcome(it: Item, row: ReadingRow, prior: PriorReading): Stored {
    const { gateway, reading, ts } = it;
    const storedHash = readingHash({ device: reading.device, ts: prior.ts, values: JSON.parse(prior.values_json), quality: prior.quality });
    const hash = readingHash({ device: reading.device, ts, values: reading.values, quality: reading.quality });
    if (storedHash !== hash) return { status: 'conflict', gateway, stream: row.stream, seq: reading.seq, device: reading.device, storedHash, hash };
    return { status: 'duplicate', gateway, seq: reading.seq, device: reading.device };
  }

  /**
   * A reading the sensor itself marks bad is kept but not judged. A replayed (historical) reading
   * is judged by the same rules (overrides, disabled and range rules included), but statelessly:
   * it must not move hold times, hysteresis or alarms, and opens no case.
   */
  function judge(it: Item, undo: (() => void)[]): Judged {
    const { gateway, reg, reading, ts } = it;
    const emergency = deps.mode.emergency();
    let breaches: Breach[] = [];
    let raised: Breach[] = [];
    let cleared: string[] = [];
    if (reading.quality !== 'bad') {
      if (reading.historical) {
        breaches = deps.engine.judge(reading.device, reg.profile.id, reading.values, emergency);
      } else {
        ({ breaches, raised, cleared } = deps.engine.evaluate(reading.device, reg.profile.id, reading.values, ts, emergency, gateway));
      }
    }
    for (const b of raised) undo.push(() => deps.engine.setAlarmed(reading.device, b.hazard, false));
    for (const h of cleared) undo.push(() => deps.engine.setAlarmed(reading.device, h, true));
    return { breaches, raised, cleared, emergency };
  }

  const storedOutcome = ({ gateway, reading }: Item): Stored => ({ status: 'stored', gateway, seq: reading.seq, device: reading.device, cases: [], alarms: [] });

  /** Records a judged reading's breaches (cases, alarms) and cleared hazards in the transaction. */
  async function record(trx: Kysely<DB>, it: Item, at: number, { breaches, raised, cleared, emergency }: Judged): Promise<Stored> {
    const { gateway, reg, reading, log } = it;
    const cases: CaseChange[] = [];
    const alarms: AlarmChange[] = [];
    const emergencyEpoch = emergency ? deps.mode.epoch?.() ?? null : null;
    for (const breach of breaches) {
      const r = await recordBreach(trx, {
        device: reg.device, kind: reg.profile.kind, breach, env: deps.env, at, historical: reading.historical, emergency,
        emergencyEpoch, raised: raised.includes(breach), log,
      });
      if (r.case) cases.push(r.case);
      if (r.alarm) alarms.push(r.alarm);
    }
    for (const hazard of cleared) {
      const alarm = await recordClear(trx, reading.device, hazard, at);
      if (alarm) alarms.push(alarm);
    }
    return { status: 'stored', gateway, seq: reading.seq, device: reading.device, cases, alarms };
  }

  return {
    submit(q) {
      return new Promise<Stored>((resolve, reject) => {
        // The caller's object made for this call becomes the queue's item (no copy per reading).
        queue.push(Object.assign(q, { resolve, reject }));
        if (queue.length >= maxReadings) void cut();
        else if (!timer) timer = setTimeout(() => void cut(), maxDelayMs);
      });
    },
    flush: () => cut(),
  };
}
