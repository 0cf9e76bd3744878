import { sql } from 'kysely';
import type { Logger } from '../lib/log.ts';
import { check } from '../lib/schema.ts';
import { Reading } from '../lib/messages.ts';
import { parseTopic } from '../lib/topics.ts';
import { gatewayOf, type Device, type District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import type { Breach, RuleEngine } from './rules.ts';
import { breachEvents, recordBreach, recordClear, type AlarmChange, type CaseChange, type CaseEnv } from './cases/index.ts';
import type { Database } from './db/database.ts';
import type { EventBus } from './events.ts';
import type { ModeProvider } from './mode.ts';

/**
 * Ingest of one reading, as a short pipeline of named steps:
 * topic -> size -> JSON -> schema -> device -> store (idempotent on gateway+seq) -> evaluate -> cases.
 * A bad payload is counted by reason and logged, never thrown. The store, the rules and the
 * cases run in ONE write transaction: a crash leaves either all or nothing, so a redelivered
 * reading is either a duplicate of a fully handled one or handled afresh.
 */

export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type RejectReason =
  | 'bad-topic' | 'topic-mismatch' | 'too-large' | 'bad-json' | 'invalid'
  | 'device-mismatch' | 'unknown-device' | 'wrong-gateway';

export type { AlarmChange } from './cases/index.ts';

export type IngestResult =
  | { status: 'stored'; gateway: string; seq: number; device: string; cases: CaseChange[]; alarms: AlarmChange[] }
  | { status: 'duplicate'; gateway: string; seq: number; device: string }
  | { status: 'rejected'; reason: RejectReason; message: string }
  /** The database failed; the reading was not stored and should be redelivered (not acknowledged). */
  | { status: 'failed'; reason: 'store-failed'; message: string };

export interface IngestStats {
  stored: number;
  duplicates: number;
  rejected: Record<string, number>;
  /** Readings the database could not take (left unacknowledged for redelivery). */
  failed: number;
  casesOpened: number;
  casesUpdated: number;
}

export interface IngestDeps {
  database: Database;
  district: District;
  profiles: Map<string, Profile>;
  env: CaseEnv;
  engine: RuleEngine;
  mode: ModeProvider;
  events: EventBus;
  now: () => number;
  logger: Logger;
}

class Rejection {
  constructor(readonly reason: RejectReason, readonly message: string, readonly details?: Record<string, unknown>) {}
}

interface Registered { device: Device; gateway: string; profile: Profile }

export interface Ingestor {
  ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult>;
  stats(): IngestStats;
  /** Seeds the rule engine with the alarms active in the database (call after migrating). */
  seed(): Promise<void>;
}

export function createIngestor(deps: IngestDeps): Ingestor {
  const { database, now, logger } = deps;
  const registry = new Map<string, Registered>();
  for (const device of deps.district.devices) {
    registry.set(device.id, { device, gateway: gatewayOf(deps.district, device), profile: deps.profiles.get(device.profile)! });
  }
  const counters: IngestStats = { stored: 0, duplicates: 0, rejected: {}, failed: 0, casesOpened: 0, casesUpdated: 0 };

  // ---- steps -------------------------------------------------------------------------------

  function checkTopic(gateway: string, topic: string): string {
    const t = parseTopic(topic);
    if (!t || t.kind !== 'up' || !t.device) throw new Rejection('bad-topic', `not a reading topic: ${topic}`);
    if (t.gateway !== gateway) throw new Rejection('topic-mismatch', `topic ${topic} is outside gateway ${gateway}'s namespace`);
    return t.device;
  }

  function checkSize(payload: Buffer): void {
    if (payload.length > MAX_PAYLOAD_BYTES) throw new Rejection('too-large', `payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  }

  function parseJson(payload: Buffer): unknown {
    try {
      return JSON.parse(payload.toString('utf8'));
    } catch (err) {
      throw new Rejection('bad-json', `payload is not JSON: ${(err as Error).message}`);
    }
  }

  function validate(body: unknown): Reading {
    const r = check(Reading, body, { owned: true });
    if (!r.ok) {
      throw new Rejection('invalid', `reading invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems: r.problems });
    }
    return r.value;
  }

  function matchDevice(gateway: string, topicDevice: string, reading: Reading): Registered {
    if (reading.device !== topicDevice) {
      throw new Rejection('device-mismatch', `payload device "${reading.device}" differs from topic device "${topicDevice}"`);
    }
    const reg = registry.get(reading.device);
    if (!reg) throw new Rejection('unknown-device', `device "${reading.device}" is not registered in the district`);
    if (reg.gateway !== gateway) {
      throw new Rejection('wrong-gateway', `device "${reading.device}" belongs to gateway ${reg.gateway}, not ${gateway}`);
    }
    return reg;
  }

  async function storeAndEvaluate(gateway: string, reg: Registered, reading: Reading, log: Logger): Promise<IngestResult> {
    const at = now();
    const ts = Date.parse(reading.ts);
    const valuesJson = JSON.stringify(reading.values);
    return database.write(async (trx) => {
      const stored = await trx.insertInto('readings').values({
        gateway, seq: reading.seq, device: reading.device, ts, received_at: at, values_json: valuesJson,
        quality: reading.quality, historical: reading.historical ? 1 : 0,
      }).onConflict((oc) => oc.columns(['gateway', 'seq']).doNothing()).returning('seq').executeTakeFirst();
      if (!stored) return { status: 'duplicate', gateway, seq: reading.seq, device: reading.device } as const;

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

  async function ingest(gateway: string, topic: string, payload: Buffer): Promise<IngestResult> {
    let log = logger.child({ gateway });
    try {
      const topicDevice = checkTopic(gateway, topic);
      log = log.child({ device: topicDevice });
      checkSize(payload);
      const reading = validate(parseJson(payload));
      const reg = matchDevice(gateway, topicDevice, reading);
      const result = await storeAndEvaluate(gateway, reg, reading, log);
      if (result.status === 'duplicate') {
        counters.duplicates++;
        log.debug({ seq: reading.seq }, 'duplicate reading ignored');
      } else if (result.status === 'stored') {
        counters.stored++;
        for (const c of result.cases) c.action === 'opened' ? counters.casesOpened++ : counters.casesUpdated++;
        if (result.cases.length || result.alarms.length) publish(reg, result);
      }
      return result;
    } catch (err) {
      if (err instanceof Rejection) {
        counters.rejected[err.reason] = (counters.rejected[err.reason] ?? 0) + 1;
        log.warn({ reason: err.reason, topic, ...err.details }, `reading rejected: ${err.message}`);
        return { status: 'rejected', reason: err.reason, message: err.message };
      }
      counters.failed++;
      log.error({ err, topic }, 'reading could not be stored');
      return { status: 'failed', reason: 'store-failed', message: (err as Error)?.message ?? String(err) };
    }
  }

  return {
    ingest,
    stats: () => ({ ...counters, rejected: { ...counters.rejected } }),
    async seed() {
      const active = await database.db.selectFrom('alarms').select(['device', 'hazard']).where('cleared_at', 'is', null).execute();
      for (const a of active) {
        const reg = registry.get(a.device);
        if (reg) deps.engine.seedActive(a.device, reg.profile.id, a.hazard);
      }
    },
  };
}
