import { sql } from 'kysely';
import type { Logger } from '../lib/log.ts';
import { Reading } from '../lib/messages.ts';
import type { Breach } from './rules.ts';
import { breachEvents, recordBreach, recordClear, type AlarmChange, type CaseChange } from './cases/index.ts';
import { createIntake, Rejection, type IngestOutcome, type IntakeCounters, type IntakeRejectReason, type PipelineDeps, type Registered } from './intake.ts';
import { checkTime, checkValues, DEFAULT_READING_LIMITS, readingHash, type ReadingLimits } from './reading-check.ts';

/**
 * Ingest of one reading, as a short pipeline of named steps:
 * topic -> size -> JSON -> schema -> device -> plausible (time, points) -> store (idempotent on
 * gateway+stream+device+seq; the same key with another payload is a counted, logged conflict) -> evaluate -> cases.
 * The steps up to the device are cloud/intake.ts, shared with edge alarms. A bad payload is counted
 * by reason and logged (rate-limited per gateway), never thrown. The store, the rules and the
 * cases run in ONE write transaction: a crash leaves either all or nothing, so a redelivered
 * reading is either a duplicate of a fully handled one or handled afresh.
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
}

export interface Ingestor {
  ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult>;
  stats(): IngestStats;
  /**
   * Seeds the rule engine with the alarms active in the database and repairs a device whose
   * latest reading lies in the future (stored before ts was checked); call after migrating.
   */
  seed(): Promise<void>;
  /** Logs what the warning limit still holds back. */
  close(): void;
}

export function createIngestor(deps: IngestDeps): Ingestor {
  const { database, now, logger } = deps;
  const counters: IngestStats = { stored: 0, duplicates: 0, conflicts: 0, rejected: {}, failed: 0, casesOpened: 0, casesUpdated: 0, warningsSuppressed: 0 };
  const limits: ReadingLimits = { ...DEFAULT_READING_LIMITS, ...deps.limits };
  const intake = deps.intake ?? createIntake(deps);
  const spec = { kind: 'up' as const, what: 'reading', maxBytes: MAX_PAYLOAD_BYTES, schema: Reading };

  function checkPlausible(reg: Registered, reading: Reading, ts: number): void {
    const problem = checkTime(ts, reading.ts, now(), limits) ?? checkValues(reading.values, reg.profile);
    if (problem) throw new Rejection(problem.reason, problem.message);
  }

  async function storeAndEvaluate(gateway: string, reg: Registered, reading: Reading, ts: number, log: Logger): Promise<IngestResult> {
    const at = now();
    const stream = reading.stream ?? '';
    const valuesJson = JSON.stringify(reading.values);
    return database.write(async (trx) => {
      const stored = await trx.insertInto('readings').values({
        gateway, stream, seq: reading.seq, device: reading.device, ts, received_at: at, values_json: valuesJson,
        quality: reading.quality, historical: reading.historical ? 1 : 0,
      }).onConflict((oc) => oc.columns(['gateway', 'stream', 'device', 'seq']).doNothing()).returning('seq').executeTakeFirst();
      if (!stored) {
        // Redelivery is normal (at least once); the same key with other values is not.
        const prior = await trx.selectFrom('readings').select(['ts', 'values_json', 'quality'])
          .where('gateway', '=', gateway).where('stream', '=', stream).where('device', '=', reading.device).where('seq', '=', reading.seq)
          .executeTakeFirstOrThrow();
        const storedHash = readingHash({ device: reading.device, ts: Number(prior.ts), values: JSON.parse(prior.values_json), quality: prior.quality });
        const hash = readingHash({ device: reading.device, ts, values: reading.values, quality: reading.quality });
        if (storedHash !== hash) return { status: 'conflict', gateway, stream, seq: reading.seq, device: reading.device, storedHash, hash } as const;
        return { status: 'duplicate', gateway, seq: reading.seq, device: reading.device } as const;
      }

      // Latest values only move forward in measurement time (a replay does not overwrite them).
      await trx.insertInto('device_state').values({
        device: reading.device, gateway, last_seq: reading.seq, last_ts: ts, last_values: valuesJson,
        last_quality: reading.quality, last_seen: at,
      }).onConflict((oc) => oc.column('device').doUpdateSet({
        gateway: sql`excluded.gateway`,
        last_seq: sql`case when excluded.last_ts >= device_state.last_ts then excluded.last_seq else device_state.last_seq end`,
        last_values: sql`case when excluded.last_ts >= device_state.last_ts then excluded.last_values else device_state.last_values end`,
        last_quality: sql`case when excluded.last_ts >= device_state.last_ts then excluded.last_quality else device_state.last_quality end`,
        last_ts: sql`case when excluded.last_ts >= device_state.last_ts then excluded.last_ts else device_state.last_ts end`,
        last_seen: sql`case when excluded.last_seen >= device_state.last_seen then excluded.last_seen else device_state.last_seen end`,
      })).execute();

      // A reading the sensor itself marks bad is kept but not judged. A replayed (historical)
      // reading is judged by the same rules (overrides, disabled and range rules included), but
      // statelessly: it must not move hold times, hysteresis or alarms, and opens no case.
      const emergency = deps.mode.emergency();
      let breaches: Breach[] = [];
      let raised: Breach[] = [];
      let cleared: string[] = [];
      if (reading.quality !== 'bad') {
        if (reading.historical) {
          breaches = deps.engine.judge(reading.device, reg.profile.id, reading.values, emergency);
        } else {
          ({ breaches, raised, cleared } = deps.engine.evaluate(reading.device, reg.profile.id, reading.values, ts, emergency));
        }
      }
      try {
        const cases: CaseChange[] = [];
        const alarms: AlarmChange[] = [];
        const emergencyEpoch = emergency ? deps.mode.epoch?.() ?? null : null;
        for (const breach of breaches) {
          const out = await recordBreach(trx, {
            device: reg.device, kind: reg.profile.kind, breach, env: deps.env, at, historical: reading.historical, emergency,
            emergencyEpoch, raised: raised.includes(breach), log,
          });
          if (out.case) cases.push(out.case);
          if (out.alarm) alarms.push(out.alarm);
        }
        for (const hazard of cleared) {
          const alarm = await recordClear(trx, reading.device, hazard, at);
          if (alarm) alarms.push(alarm);
        }
        return { status: 'stored', gateway, seq: reading.seq, device: reading.device, cases, alarms } as const;
      } catch (err) {
        // Not committed: forget the transitions so that the redelivered reading makes them again.
        for (const b of raised) deps.engine.setAlarmed(reading.device, b.hazard, false);
        for (const h of cleared) deps.engine.setAlarmed(reading.device, h, true);
        throw err;
      }
    });
  }

  function publish(reg: Registered, result: Extract<IngestResult, { status: 'stored' }>): void {
    for (const e of breachEvents(reg.device, now(), result.cases, result.alarms)) deps.events.emit(e);
  }

  // ---- pipeline ----------------------------------------------------------------------------

  function ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult> {
    return intake.guard<IngestResult, RejectReason>(spec, gateway, topic, counters, async ({ log, checked }) => {
      const { reg, body: reading } = intake.decode(spec, gateway, topic, payload);
      const ts = Date.parse(reading.ts);
      checkPlausible(reg, reading, ts);
      checked();
      const result = await storeAndEvaluate(gateway, reg, reading, ts, log);
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
    close: () => intake.close(),
    async seed() {
      await repairFutureLatest();
      const active = await database.db.selectFrom('alarms').select(['device', 'hazard']).where('cleared_at', 'is', null).execute();
      const profileOf = new Map(deps.district.devices.map((d) => [d.id, d.profile]));
      for (const a of active) {
        const profile = profileOf.get(a.device);
        if (profile) deps.engine.seedActive(a.device, profile, a.hazard);
      }
    },
  };
}
