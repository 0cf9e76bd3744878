import { indexOf } from './registry/view.ts';
import { sql } from 'kysely';
import type { Logger } from '../lib/log.ts';
import { gatewayOf, type Device, type District } from '../devices/district.ts';
import type { Profile } from '../devices/profile.ts';
import type { Database } from './db/database.ts';
import { appendHistory, breachEvents, iso, recordBreach, recordClear, SYSTEM_ACTOR, type CaseEnv } from './cases/index.ts';
import type { Breach, RuleEngine, SilenceRule } from './rules.ts';
import type { EventBus } from './events.ts';
import type { ModeProvider } from './mode.ts';
import { RUNNING_STATES } from './workflow.ts';

/**
 * The case clock: reminders before deadlines, the escalation ladder (thingsboard #12501, #8520)
 * and the no-data rule. Every `tickMs` it:
 * 1. reminds the unit of each running case whose deadline is near (once per deadline);
 * 2. escalates a case left unaccepted past `ackWithinMs`, or overdue, one rung at a time:
 *    0 the crew, 1 the unit's duty leader, 2 the command centre (`stepMs` between rungs);
 * 3. raises `offline` for devices silent past their silence rule, clears it when they report.
 * Every change is a conditional UPDATE, so several workers ticking together act once.
 */

export interface EscalationPolicy {
  /** Remind this long before the deadline (at most a quarter of the time allowed). */
  remindBeforeMs: number;
  /** A dispatched case not accepted within this escalates. */
  ackWithinMs: number;
  /** Time between rungs of the ladder. */
  stepMs: number;
  tickMs: number;
}

export const DEFAULT_ESCALATION: EscalationPolicy = { remindBeforeMs: 60 * 60_000, ackWithinMs: 15 * 60_000, stepMs: 30 * 60_000, tickMs: 5_000 };
export const LADDER = ['crew', 'duty-leader', 'command-centre'] as const;

export interface EscalatorDeps {
  database: Database;
  district: District;
  profiles: Map<string, Profile>;
  env: CaseEnv;
  engine: RuleEngine;
  mode: ModeProvider;
  events: EventBus;
  policy: EscalationPolicy;
  now: () => number;
  logger: Logger;
}

export interface Escalator {
  start(): void;
  stop(): Promise<void>;
  /** One pass (the timer calls it; tests may too). */
  tick(): Promise<void>;
  /** Reminders and escalation steps this worker made since start (metrics). */
  stats(): { reminders: number; escalations: number };
  /** The policy in force. */
  policy(): EscalationPolicy;
  /** Puts a new policy in force from the next pass (configuration as data); a new `tickMs` restarts the timer. */
  setPolicy(next: EscalationPolicy): void;
}

export function buildEscalator(deps: EscalatorDeps): Escalator {
  const { database, now, logger } = deps;
  let policy = deps.policy;
  const db = database.db;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | undefined;
  const counts = { reminders: 0, escalations: 0 };

  function remindAt(openedAt: number, deadline: number): number {
    return deadline - Math.min(policy.remindBeforeMs, (deadline - openedAt) / 4);
  }

  async function reminders(at: number): Promise<void> {
    const rows = await db.selectFrom('cases').select(['id', 'unit', 'opened_at', 'deadline_at', 'state', 'device', 'hazard'])
      .where('state', 'in', RUNNING_STATES).where('reminded_at', 'is', null)
      .where('deadline_at', '>', at).where('deadline_at', '<=', at + policy.remindBeforeMs).execute();
    for (const r of rows) {
      if (at < remindAt(Number(r.opened_at), Number(r.deadline_at))) continue;
      const done = await database.write(async (trx) => {
        const u = await trx.updateTable('cases').set({ reminded_at: at }).where('id', '=', r.id).where('reminded_at', 'is', null).executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) return false;
        await appendHistory(trx, r.id, [{ at, action: 'remind', ...SYSTEM_ACTOR, from_state: r.state, to_state: r.state, note: `deadline ${iso(r.deadline_at)} is near; reminded ${r.unit}` }]);
        return true;
      });
      if (done) {
        counts.reminders++;
        deps.events.emit({ type: 'case.reminder', at: iso(at), caseId: r.id, unit: r.unit, device: r.device, hazard: r.hazard, state: r.state, data: { deadline: iso(r.deadline_at) } });
      }
    }
  }

  function targetLevel(r: { state: string; deadline_at: number; dispatched_at: number | null; opened_at: number }, at: number): number {
    let level = 0;
    const deadline = Number(r.deadline_at);
    if (at >= deadline) level = Math.max(level, at >= deadline + policy.stepMs ? 2 : 1);
    if (r.state === 'dispatched') {
      const since = Number(r.dispatched_at ?? r.opened_at) + policy.ackWithinMs;
      if (at >= since) level = Math.max(level, at >= since + policy.stepMs ? 2 : 1);
    }
    if (r.state === 'registered' && at >= Number(r.opened_at) + policy.ackWithinMs) level = Math.max(level, 2);
    return level;
  }

  async function escalations(at: number): Promise<void> {
    const rows = await db.selectFrom('cases')
      .select(['id', 'unit', 'state', 'deadline_at', 'dispatched_at', 'opened_at', 'escalation_level', 'device', 'hazard'])
      .where('state', 'in', RUNNING_STATES).where('escalation_level', '<', LADDER.length - 1)
      .where((eb) => eb.or([
        eb('deadline_at', '<=', at),
        eb.and([eb('state', '=', 'dispatched'), eb(sql<number>`coalesce(dispatched_at, opened_at)`, '<=', at - policy.ackWithinMs)]),
        eb.and([eb('state', '=', 'registered'), eb('opened_at', '<=', at - policy.ackWithinMs)]),
      ])).execute();
    for (const r of rows) {
      const from = Number(r.escalation_level);
      const to = targetLevel(r, at);
      if (to <= from) continue;
      const overdue = at >= Number(r.deadline_at);
      const rung = LADDER[to];
      const contact = rung === 'duty-leader'
        ? (deps.env.routing.units[r.unit]?.dutyLeader ?? deps.district.units.find((u) => u.id === r.unit)?.dutyContact ?? r.unit)
        : rung === 'command-centre' ? deps.env.routing.commandCentre : r.unit;
      const why = overdue ? `overdue since ${iso(r.deadline_at)}` : `not accepted within ${policy.ackWithinMs / 60_000} min`;
      const done = await database.write(async (trx) => {
        const u = await trx.updateTable('cases').set({ escalation_level: to, escalated_at: at })
          .where('id', '=', r.id).where('escalation_level', '=', from).executeTakeFirst();
        if (Number(u.numUpdatedRows) === 0) return false;
        await appendHistory(trx, r.id, [{
          at, action: 'escalate', ...SYSTEM_ACTOR, from_state: r.state, to_state: r.state,
          reason: why, note: `escalated to ${rung} (${contact})`, details: JSON.stringify({ level: to, rung, contact }),
        }]);
        return true;
      });
      if (done) {
        logger.warn({ caseId: r.id, unit: r.unit, level: to, rung }, `case escalated: ${why}`);
        counts.escalations++;
        deps.events.emit({ type: 'case.escalated', at: iso(at), caseId: r.id, unit: r.unit, device: r.device, hazard: r.hazard, state: r.state, data: { level: to, rung, contact, reason: why } });
      }
    }
  }

  async function silence(at: number): Promise<void> {
    const states = new Map((await db.selectFrom('device_state').select(['device', 'last_seen']).execute()).map((s) => [s.device, Number(s.last_seen)]));
    const offline = new Set((await db.selectFrom('alarms').select('device').where('hazard', '=', 'offline').where('cleared_at', 'is', null).execute()).map((a) => a.device));
    for (const device of deps.district.devices) {
      const profile = deps.profiles.get(device.profile);
      if (!profile) continue;
      const rule = deps.engine.rules(profile.id, device.id).find((r): r is SilenceRule => r.kind === 'silence');
      const lastSeen = states.get(device.id);
      if (!rule || lastSeen === undefined) continue;
      const expected = device.pollMs ?? profile.pollMs;
      const silentFor = at - lastSeen;
      const silent = silentFor > rule.afterPolls * expected;
      if (silent && !offline.has(device.id)) await raiseOffline(device, profile, rule, silentFor, at);
      else if (!silent && offline.has(device.id)) await clearOffline(device, at);
    }
  }

  async function raiseOffline(device: Device, profile: Profile, rule: SilenceRule, silentFor: number, at: number): Promise<void> {
    const breach: Breach = { hazard: rule.hazard, severity: rule.severity, class: rule.class, thresholdId: rule.id, point: 'last_seen', value: Math.round(silentFor / 1000), limit: rule.afterPolls, op: 'silence' };
    const log = logger.child({ device: device.id });
    const emergency = deps.mode.emergency();
    const out = await database.write((trx) => recordBreach(trx, {
      device, kind: profile.kind, breach, env: deps.env, at, historical: false, emergency,
      emergencyEpoch: emergency ? deps.mode.epoch?.() ?? null : null, raised: true, onlyIfRaised: true, log,
    }));
    if (!out.alarm) return;
    deps.engine.setAlarmed(device.id, rule.hazard, true);
    log.warn({ gateway: indexOf(deps.district).gatewayOf.get(device.id), silentMs: silentFor }, 'device offline');
    for (const e of breachEvents(device, at, out.case ? [out.case] : [], [out.alarm])) deps.events.emit(e);
  }

  async function clearOffline(device: Device, at: number): Promise<void> {
    const alarm = await database.write((trx) => recordClear(trx, device.id, 'offline', at));
    deps.engine.setAlarmed(device.id, 'offline', false);
    if (alarm) for (const e of breachEvents(device, at, [], [alarm])) deps.events.emit(e);
  }

  async function tick(): Promise<void> {
    // One pass at a time per worker; a slow pass is not stacked on.
    if (running) return running;
    const at = now();
    running = (async () => {
      try {
        await reminders(at);
        await escalations(at);
        await silence(at);
      } catch (err) {
        logger.error({ err }, 'case clock pass failed');
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  return {
    start() {
      timer ??= setInterval(() => { void tick(); }, policy.tickMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
    tick,
    stats: () => ({ ...counts }),
    policy: () => policy,
    setPolicy(next) {
      const retime = next.tickMs !== policy.tickMs && timer !== undefined;
      policy = next;
      if (!retime) return;
      clearInterval(timer);
      timer = setInterval(() => { void tick(); }, policy.tickMs);
    },
  };
}
