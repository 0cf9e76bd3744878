import type { Logger } from '../../lib/log.ts';
import { EdgeAlarm } from '../../lib/messages.ts';
import { limitOf, type ThresholdRule } from '../../devices/rules.ts';
import { breachEvents, recordBreach, type AlarmChange, type CaseChange } from '../cases/index.ts';
import type { Breach } from '../rules.ts';
import { createIntake, payloadHash, Rejection, type IngestOutcome, type IntakeCounters, type IntakeRejectReason, type PipelineDeps, type Registered } from '../intake.ts';

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
 * historical data alone never opens a case. The steps up to the device are cloud/intake.ts, shared
 * with readings: a bad one is counted by reason and logged (rate-limited per gateway), never thrown;
 * the same key with another payload is a conflict, counted and logged with both payloads' hashes.
 */

export const MAX_ALARM_BYTES = 16 * 1024;

export type EdgeAlarmRejectReason = IntakeRejectReason | 'unknown-hazard' | 'unknown-rule';

export type EdgeAlarmResult = IngestOutcome<EdgeAlarmRejectReason>;

export interface EdgeAlarmStats extends IntakeCounters {
  /** Cloud alarms an edge alarm raised. */
  raised: number;
  /** Edge alarms on a hazard whose alarm was already active (merged). */
  merged: number;
}

export type EdgeAlarmDeps = PipelineDeps;

export interface EdgeAlarmIngestor {
  ingest(gateway: string, topic: string, payload: Buffer): Promise<EdgeAlarmResult>;
  stats(): EdgeAlarmStats;
  /** Logs what the warning limit still holds back. */
  close(): void;
}

/** What an edge alarm says; `historical` is left out, as a replay is the same alarm (cloud/reading-check.ts readingHash). */
function alarmHash(a: { device: string; ts: number; rule: string; hazard: string; active: boolean; value: unknown }): string {
  return payloadHash({ device: a.device, ts: a.ts, rule: a.rule, hazard: a.hazard, active: a.active, value: a.value });
}

export function createEdgeAlarmIngestor(deps: EdgeAlarmDeps): EdgeAlarmIngestor {
  const { database, now } = deps;
  const counters: EdgeAlarmStats = { stored: 0, duplicates: 0, conflicts: 0, rejected: {}, failed: 0, warningsSuppressed: 0, raised: 0, merged: 0 };
  const intake = deps.intake ?? createIntake(deps);
  const spec = { kind: 'alarm' as const, what: 'edge alarm', maxBytes: MAX_ALARM_BYTES, schema: EdgeAlarm };

  // ---- steps -------------------------------------------------------------------------------

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
      if (!stored) {
        // Redelivery is normal (at least once); the same key with another payload is not.
        const prior = await trx.selectFrom('edge_alarms').select(['ts', 'rule_id', 'hazard', 'active', 'value'])
          .where('gateway', '=', gateway).where('stream', '=', a.stream ?? '').where('device', '=', a.device).where('seq', '=', a.seq)
          .executeTakeFirstOrThrow();
        const storedHash = alarmHash({
          device: a.device, ts: Number(prior.ts), rule: prior.rule_id, hazard: prior.hazard, active: Number(prior.active) === 1, value: JSON.parse(prior.value),
        });
        const hash = alarmHash({ device: a.device, ts: Date.parse(a.ts), rule: a.rule, hazard: a.hazard, active: a.active, value: a.value });
        if (storedHash !== hash) return { status: 'conflict', gateway, stream: a.stream ?? '', seq: a.seq, device: a.device, storedHash, hash } as const;
        return { status: 'duplicate', gateway, seq: a.seq, device: a.device } as const;
      }
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

  function ingest(gateway: string, topic: string, payload: Buffer): Promise<EdgeAlarmResult> {
    return intake.guard<EdgeAlarmResult, EdgeAlarmRejectReason>(spec, gateway, topic, counters, async ({ log, checked }) => {
      const { reg, body: alarm } = intake.decode(spec, gateway, topic, payload);
      const rule = matchRule(reg, alarm);
      checked();
      const result = await storeAndRaise(gateway, reg, rule, alarm, log);
      if (result.status === 'duplicate') {
        counters.duplicates++;
        log.debug({ seq: alarm.seq }, 'duplicate edge alarm ignored');
      } else if (result.status === 'conflict') {
        counters.conflicts++;
        intake.warn(gateway, counters, log, { stream: result.stream, seq: result.seq, storedHash: result.storedHash, hash: result.hash },
          `conflicting edge alarm: (${gateway}, ${result.stream || "''"}, ${result.device}, ${result.seq}) was stored with another payload; the first is kept`);
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
    });
  }

  return { ingest, stats: () => ({ ...counters, rejected: { ...counters.rejected } }), close: () => intake.close() };
}
