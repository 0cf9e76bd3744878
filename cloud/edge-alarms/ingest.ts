import type { Logger } from '../../lib/log.ts';
import { check } from '../../lib/schema.ts';
import { EdgeAlarm } from '../../lib/messages.ts';
import { parseTopic } from '../../lib/topics.ts';
import { limitOf, type ThresholdRule } from '../../devices/rules.ts';
import { gatewayOf, type Device, type District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { breachEvents, recordBreach, type AlarmChange, type CaseChange, type CaseEnv } from '../cases/index.ts';
import type { Database } from '../db/database.ts';
import type { EventBus } from '../events.ts';
import type { ModeProvider } from '../mode.ts';
import type { Breach, RuleEngine } from '../rules.ts';

/**
 * Ingest of one edge alarm (`cs/v1/{gw}/alarm/{device}`, lib/messages.ts EdgeAlarm), on every path a
 * reading takes (MQTT, the in-process hand-off, the Redis Stream), as a pipeline of named steps:
 * topic -> size -> JSON -> schema -> device -> rule -> store (once per gateway, stream, device, seq) -> breach.
 *
 * A raised edge alarm is a breach of the cloud's rule of that id (its severity and class are the
 * cloud's), recorded at once through the one breach orchestration (cloud/cases/flow.ts): it raises
 * the cloud alarm (origin `edge`) and its case, marked as raised at the edge. When the hazard's alarm
 * is already active (the cloud's rules, or this edge, raised it first) the two merge: no second alarm,
 * no second case. Clearing stays with the cloud's rules (hysteresis on the readings the edge sends
 * with the clear), so `active: false` is stored only; so is a historical (replayed) edge alarm:
 * historical data alone never opens a case. A bad one is counted by reason and logged, never thrown.
 */

export const MAX_ALARM_BYTES = 16 * 1024;

export type EdgeAlarmRejectReason =
  | 'bad-topic' | 'topic-mismatch' | 'too-large' | 'bad-json' | 'invalid'
  | 'device-mismatch' | 'unknown-device' | 'wrong-gateway' | 'unknown-hazard' | 'unknown-rule';

export type EdgeAlarmResult =
  | { status: 'stored'; gateway: string; seq: number; device: string; cases: CaseChange[]; alarms: AlarmChange[] }
  | { status: 'duplicate'; gateway: string; seq: number; device: string }
  | { status: 'rejected'; reason: EdgeAlarmRejectReason; message: string }
  /** The database failed; not stored, to be redelivered (not acknowledged). */
  | { status: 'failed'; reason: 'store-failed'; message: string };

export interface EdgeAlarmStats {
  stored: number;
  duplicates: number;
  rejected: Record<string, number>;
  failed: number;
  /** Cloud alarms an edge alarm raised. */
  raised: number;
  /** Edge alarms on a hazard whose alarm was already active (merged). */
  merged: number;
}

export interface EdgeAlarmDeps {
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

export interface EdgeAlarmIngestor {
  ingest(gateway: string, topic: string, payload: Buffer): Promise<EdgeAlarmResult>;
  stats(): EdgeAlarmStats;
}

class Rejection {
  constructor(readonly reason: EdgeAlarmRejectReason, readonly message: string, readonly details?: Record<string, unknown>) {}
}

interface Registered { device: Device; gateway: string; profile: Profile }

export function createEdgeAlarmIngestor(deps: EdgeAlarmDeps): EdgeAlarmIngestor {
  const { database, now, logger } = deps;
  const registry = new Map<string, Registered>();
  for (const device of deps.district.devices) {
    const profile = deps.profiles.get(device.profile);
    if (profile) registry.set(device.id, { device, gateway: gatewayOf(deps.district, device), profile });
  }
  const counters: EdgeAlarmStats = { stored: 0, duplicates: 0, rejected: {}, failed: 0, raised: 0, merged: 0 };

  // ---- steps -------------------------------------------------------------------------------

  function checkTopic(gateway: string, topic: string): string {
    const t = parseTopic(topic);
    if (!t || t.kind !== 'alarm' || !t.device) throw new Rejection('bad-topic', `not an edge alarm topic: ${topic}`);
    if (t.gateway !== gateway) throw new Rejection('topic-mismatch', `topic ${topic} is outside gateway ${gateway}'s namespace`);
    return t.device;
  }

  function checkSize(payload: Buffer): void {
    if (payload.length > MAX_ALARM_BYTES) throw new Rejection('too-large', `payload of ${payload.length} bytes exceeds ${MAX_ALARM_BYTES}`);
  }

  function parseJson(payload: Buffer): unknown {
    try {
      return JSON.parse(payload.toString('utf8'));
    } catch (err) {
      throw new Rejection('bad-json', `payload is not JSON: ${(err as Error).message}`);
    }
  }

  function validate(body: unknown): EdgeAlarm {
    const r = check(EdgeAlarm, body, { owned: true });
    if (!r.ok) throw new Rejection('invalid', `edge alarm invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems: r.problems });
    return r.value;
  }

  function matchDevice(gateway: string, topicDevice: string, a: EdgeAlarm): Registered {
    if (a.device !== topicDevice) throw new Rejection('device-mismatch', `payload device "${a.device}" differs from topic device "${topicDevice}"`);
    const reg = registry.get(a.device);
    if (!reg) throw new Rejection('unknown-device', `device "${a.device}" is not registered in the district`);
    if (reg.gateway !== gateway) throw new Rejection('wrong-gateway', `device "${a.device}" belongs to gateway ${reg.gateway}, not ${gateway}`);
    return reg;
  }

  /** The cloud's own threshold rule of that id and hazard for this device (overrides applied, disabled left out). */
  function matchRule(reg: Registered, a: EdgeAlarm): ThresholdRule {
    const rules = deps.engine.rules(reg.profile.id, a.device);
    if (!rules.some((r) => r.hazard === a.hazard)) {
      throw new Rejection('unknown-hazard', `device "${a.device}" has no rule for hazard "${a.hazard}" (the cloud's rule set)`);
    }
    const rule = rules.find((r): r is ThresholdRule => r.kind === 'threshold' && r.id === a.rule && r.hazard === a.hazard);
    if (!rule) throw new Rejection('unknown-rule', `device "${a.device}" has no threshold rule "${a.rule}" for hazard "${a.hazard}" (the cloud's rule set)`);
    return rule;
  }

  async function storeAndRaise(gateway: string, reg: Registered, rule: ThresholdRule, a: EdgeAlarm, log: Logger): Promise<EdgeAlarmResult> {
    const at = now();
    const emergency = deps.mode.emergency();
    return database.write(async (trx) => {
      const stored = await trx.insertInto('edge_alarms').values({
        gateway, stream: a.stream ?? '', device: a.device, seq: a.seq, ts: Date.parse(a.ts), received_at: at,
        rule_id: a.rule, hazard: a.hazard, active: a.active ? 1 : 0, value: JSON.stringify(a.value), historical: a.historical ? 1 : 0, alarm_id: null,
      }).onConflict((oc) => oc.columns(['gateway', 'stream', 'device', 'seq']).doNothing()).returning('seq').executeTakeFirst();
      if (!stored) return { status: 'duplicate', gateway, seq: a.seq, device: a.device } as const;
      const cases: CaseChange[] = [];
      const alarms: AlarmChange[] = [];
      if (a.active && !a.historical) {
        const breach: Breach = {
          hazard: rule.hazard, severity: rule.severity, class: rule.class, thresholdId: rule.id, point: rule.point,
          value: a.value, limit: a.limit ?? limitOf(rule, emergency), op: rule.op, origin: 'edge',
        };
        // Only a newly raised alarm acts: on an active one the edge confirms what the cloud already has.
        const out = await recordBreach(trx, {
          device: reg.device, kind: reg.profile.kind, breach, env: deps.env, at, historical: false, emergency,
          emergencyEpoch: emergency ? deps.mode.epoch?.() ?? null : null, raised: true, onlyIfRaised: true, log,
        });
        if (out.case) cases.push(out.case);
        if (out.alarm) alarms.push(out.alarm);
      }
      const active = await trx.selectFrom('alarms').select('id').where('device', '=', a.device).where('hazard', '=', a.hazard)
        .where('cleared_at', 'is', null).executeTakeFirst();
      if (active) {
        await trx.updateTable('edge_alarms').set({ alarm_id: active.id })
          .where('gateway', '=', gateway).where('stream', '=', a.stream ?? '').where('device', '=', a.device).where('seq', '=', a.seq).execute();
      }
      return { status: 'stored', gateway, seq: a.seq, device: a.device, cases, alarms } as const;
    });
  }

  // ---- pipeline ----------------------------------------------------------------------------

  async function ingest(gateway: string, topic: string, payload: Buffer): Promise<EdgeAlarmResult> {
    let log = logger.child({ gateway });
    try {
      const topicDevice = checkTopic(gateway, topic);
      log = log.child({ device: topicDevice });
      checkSize(payload);
      const alarm = validate(parseJson(payload));
      const reg = matchDevice(gateway, topicDevice, alarm);
      const rule = matchRule(reg, alarm);
      const result = await storeAndRaise(gateway, reg, rule, alarm, log);
      if (result.status === 'duplicate') {
        counters.duplicates++;
        log.debug({ seq: alarm.seq }, 'duplicate edge alarm ignored');
      } else if (result.status === 'stored') {
        counters.stored++;
        if (alarm.active && !alarm.historical) {
          // Committed: the rules now hold the hazard as alarmed, so the readings that follow update
          // this alarm's case rather than raise another, and clear it past the rule's hysteresis.
          deps.engine.seedActive(alarm.device, reg.profile.id, alarm.hazard, rule.id);
          if (result.alarms.length) counters.raised++;
          else counters.merged++;
        }
        log.info({ seq: alarm.seq, rule: alarm.rule, active: alarm.active, historical: alarm.historical, raised: result.alarms.length > 0 }, 'edge alarm');
        for (const e of breachEvents(reg.device, now(), result.cases, result.alarms)) deps.events.emit(e);
      }
      return result;
    } catch (err) {
      if (err instanceof Rejection) {
        counters.rejected[err.reason] = (counters.rejected[err.reason] ?? 0) + 1;
        log.warn({ reason: err.reason, topic, ...err.details }, `edge alarm rejected: ${err.message}`);
        return { status: 'rejected', reason: err.reason, message: err.message };
      }
      counters.failed++;
      log.error({ err, topic }, 'edge alarm could not be stored');
      return { status: 'failed', reason: 'store-failed', message: (err as Error)?.message ?? String(err) };
    }
  }

  return { ingest, stats: () => ({ ...counters, rejected: { ...counters.rejected } }) };
}
