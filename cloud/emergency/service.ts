import type { Kysely } from 'kysely';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { DEFAULT_FAST_POLL_MS, EMERGENCY_CAP_HOURS, type CityMode } from '../../lib/vocabulary.ts';
import { createCalendar } from '../calendar.ts';
import { DEFAULT_CATEGORIES } from '../categories.ts';
import type { DB } from '../db/schema.ts';
import type { EventBus } from '../events.ts';
import { checkTimeliness, parseCap, type CapAlert } from './cap.ts';
import { decide, levelRank, type Decision, type Level, type WarningPolicy } from './policy.ts';
import { createModeStore, type ModeState, type ModeStore, type SwitchRequest, type WithinSwitch } from './mode.ts';
import { createCommandFanout, type CommandFanout, type FanoutStatus, type ModeCommand } from './fanout.ts';
import type { SharedAcks } from './shared-acks.ts';
import { EmergencyErrors } from './errors.ts';
import { tightenOpenCases, type TightenEnv, type TightenedCase } from './tighten.ts';
import { expiredWarnings, expiryMessage, type ExpiredWarning } from './expiry.ts';

/**
 * Emergency mode, all effects at once (docs/domain.md#emergency-mode): the audited state, every
 * gateway told to poll fast (acknowledgements tracked and retried), open hazard cases tightened to
 * the 12-hour cap with a history row each, units on duty. Leaving restores every gateway's normal
 * mode; cases keep their flag. A warning in force that expires is reported, never acted on alone.
 */

export interface EmergencyOptions {
  db: Kysely<DB>;
  write: <T>(fn: (trx: Kysely<DB>) => Promise<T>) => Promise<T>;
  policy: WarningPolicy;
  gateways: () => string[];
  isOnline: (gateway: string) => boolean;
  publish: (topic: string, payload: string) => Promise<void>;
  now: () => number;
  logger: Logger;
  /** Poll and report intervals the gateways use in emergency mode. */
  fast?: { pollMs: number; heartbeatMs?: number };
  retryMs?: number;
  /** Hours within which every emergency case must be handled (Zhuhai: 12). */
  capHours?: number;
  /** Case categories and work calendar, for the sub-deadlines of tightened cases (defaults: the cloud's). */
  cases?: Omit<TightenEnv, 'capHours'>;
  /** The cloud's event bus: tightened cases (`case.updated`) and expired warnings are emitted on it. */
  events?: EventBus;
  /** Pull in the deadlines of open cases when the mode starts. */
  tightenOpenCases?: boolean;
  /** PostgreSQL: lock the mode row while switching (several workers). */
  lockRow?: boolean;
  /** How often to re-read the mode another worker may have switched (default 2 s). */
  syncMs?: number;
  /** Acknowledgements shared with the other workers (several workers on one stream); closed on stop. */
  acks?: SharedAcks;
}

export interface WarningResult {
  identifier: string;
  sender: string;
  msgType: string;
  status: string;
  duplicate: boolean;
  decision: Decision;
  state: ModeState;
}

export interface Emergency {
  start(): Promise<void>;
  stop(): Promise<void>;
  state(): ModeState;
  /** The state, or undefined before start (for synchronous readers such as the mode provider). */
  current(): ModeState | undefined;
  store: ModeStore;
  fanout: CommandFanout;
  switchMode(req: { mode: CityMode; level?: Level; actor: string; role: string; reason: string }): Promise<ModeState>;
  receiveWarning(xml: string | Buffer, actor: string): Promise<WarningResult>;
  status(): { state: ModeState; gateways: FanoutStatus; unitsOnDuty: boolean };
  /** Warnings holding the mode whose `expires` has passed (for the situation board). */
  expired(): Promise<(ExpiredWarning & { message: string })[]>;
  /** Reports newly expired warnings once (audit log and event); run on a timer, callable by tests. */
  checkExpiry(): Promise<ExpiredWarning[]>;
  /** The settings in force: warning policy, fast mode, command retry period, tightening. */
  settings(): EmergencySettingsValue;
  /**
   * Puts new settings in force (configuration as data, cloud/config/): the next warning is decided
   * by the new policy, the next fast-mode command carries the new intervals. The mode and a command
   * already sent are left as they are.
   */
  /** `version`: the configuration's stored version (cloud/config/), naming the command a changed fast interval sends. */
  configure(next: EmergencySettingsValue, version?: number): void;
}

/** What `configure` changes at runtime (cloud/config/settings.ts EmergencySettings). */
export interface EmergencySettingsValue {
  policy: WarningPolicy;
  fast: { pollMs: number; heartbeatMs?: number };
  retryMs: number;
  tightenOpenCases: boolean;
}

export function buildEmergency(opts: EmergencyOptions): Emergency {
  let o = opts;
  const capHours = o.capHours ?? EMERGENCY_CAP_HOURS;
  let fast = o.fast ?? { pollMs: DEFAULT_FAST_POLL_MS };
  // Read through: the cloud's categories and calendar may be changed at runtime (cloud/config/).
  const fallbackCalendar = o.cases?.calendar ? undefined : createCalendar();
  const caseEnv: TightenEnv = {
    get categories() { return o.cases?.categories ?? DEFAULT_CATEGORIES; },
    get calendar() { return o.cases?.calendar ?? fallbackCalendar!; },
    capHours,
  };
  const store = createModeStore({ db: o.db, write: o.write, now: o.now, lockRow: o.lockRow });
  const fanout = createCommandFanout({ publish: o.publish, gateways: o.gateways, isOnline: o.isOnline, now: o.now, logger: o.logger, retryMs: o.retryMs, shared: o.acks });
  let current: ModeState | undefined;
  let reconfigured = 0;
  let sync: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;

  const commandFor = (s: ModeState): ModeCommand => (s.mode === 'emergency'
    ? { type: 'set-mode', mode: 'fast', pollMs: fast.pollMs, heartbeatMs: fast.heartbeatMs }
    : { type: 'set-mode', mode: 'normal' });

  /** Entering emergency from normal tightens open cases in the switch's own transaction. */
  function tightenWithin(tightened: TightenedCase[]): WithinSwitch | undefined {
    if (!o.tightenOpenCases) return undefined;
    return async (trx, after, before) => {
      if (after.mode !== 'emergency' || before.mode === 'emergency') return;
      tightened.push(...await tightenOpenCases(trx, after, caseEnv));
    };
  }

  async function effects(after: ModeState, before: ModeState, tightened: TightenedCase[]): Promise<void> {
    o.logger.warn({ mode: after.mode, level: after.level, actor: after.actor, reason: after.reason, epoch: after.epoch, from: before.mode }, 'emergency mode switched');
    if (tightened.length) o.logger.info({ cases: tightened.length, epoch: after.epoch }, 'open cases tightened to the emergency cap');
    // Events after the commit (cloud/events.ts): one per case changed, as for any other change.
    const at = new Date(after.since).toISOString();
    for (const c of tightened) {
      o.events?.emit({
        type: 'case.updated', at, caseId: c.id, unit: c.unit, device: c.device, hazard: c.hazard, state: c.state,
        data: { reason: 'emergency', epoch: after.epoch, deadline: new Date(c.deadline.to).toISOString(), previousDeadline: new Date(c.deadline.from).toISOString() },
      });
    }
    await fanout.begin(`mode-${after.epoch}`, commandFor(after), { startedAt: after.since });
  }

  /** Applies what `decide` asks in one transaction (with the state row held); effects follow on this worker. */
  async function transact(decide: Parameters<ModeStore['transact']>[0]): Promise<ModeState> {
    const tightened: TightenedCase[] = [];
    const r = await store.transact(decide, tightenWithin(tightened));
    if (!r) return current ?? await store.load();
    current = r.after;
    if (r.changed) await effects(r.after, r.before, tightened);
    return r.after;
  }

  async function checkExpiry(): Promise<ExpiredWarning[]> {
    const s = current;
    if (!s) return [];
    const reported: ExpiredWarning[] = [];
    for (const w of await expiredWarnings(o.db, s, o.now())) {
      const message = expiryMessage(w, s);
      // Once per period and alert, across workers and restarts: the audit log holds the mark.
      if (!await store.note({ epoch: s.epoch, action: 'warning-expired', actor: 'system', role: 'system', reason: message, alertId: w.identifier })) continue;
      o.logger.warn({ cap: w.identifier, expiredAt: new Date(w.expiredAt).toISOString(), epoch: s.epoch, level: s.level }, 'warning in force expired; mode held for the commander');
      o.events?.emit({
        type: 'emergency.warning-expired', at: new Date(o.now()).toISOString(),
        data: { identifier: w.identifier, sender: w.sender, event: w.event, expiredAt: new Date(w.expiredAt).toISOString(), epoch: s.epoch, mode: s.mode, level: s.level, message },
      });
      reported.push(w);
    }
    return reported;
  }

  /** What a warning asks of the mode, given the state it finds. */
  function warningRequest(alert: CapAlert, decision: Decision, s: ModeState, actor: string): SwitchRequest | undefined {
    if (decision.action === 'enter') {
      const superseded = new Set(alert.references.map((r) => r.identifier));
      const alerts = [...s.alerts.filter((a) => !superseded.has(a)), alert.identifier];
      // A commander's manual switch is never lowered by a warning; a warning may raise it.
      const keepManual = s.mode === 'emergency' && s.source === 'manual';
      const level = keepManual && levelRank(s.level!) >= levelRank(decision.level) ? s.level! : decision.level;
      return { mode: 'emergency', level, actor, role: 'warning-feed', reason: `${decision.event}${decision.headline ? `: ${decision.headline}` : ''} (CAP ${alert.identifier})`, source: keepManual ? 'manual' : 'warning', alertId: alert.identifier, alerts };
    }
    if (decision.action === 'cancel' && s.mode === 'emergency') {
      const lifted = new Set(decision.references);
      const alerts = s.alerts.filter((a) => !lifted.has(a));
      if (s.source === 'warning' && alerts.length === 0) {
        return { mode: 'normal', actor, role: 'warning-feed', reason: `warning lifted (CAP ${alert.identifier})`, source: 'warning', alertId: alert.identifier, alerts: [] };
      }
      return { mode: 'emergency', level: s.level!, actor, role: 'warning-feed', reason: `alerts lifted (CAP ${alert.identifier}); mode held`, source: s.source, alertId: alert.identifier, alerts };
    }
    return undefined;
  }

  return {
    store,
    fanout,
    async start() {
      current = await store.load();
      // A restart keeps the mode, and gateways are told the current one again (idempotent on the
      // epoch), so none is left in fast mode if the cloud stopped before they acknowledged normal.
      if (current.epoch > 0) await fanout.begin(`mode-${current.epoch}`, commandFor(current));
      // Another worker may switch the mode or change the warnings holding it: follow it, so rules,
      // deadlines and the expiry check here agree. The worker that switched does the fan-out.
      // It follows that worker's command too (without sending it): the same acknowledgements show here.
      sync = setInterval(() => {
        store.load().then(async (s) => {
          if (!current) return;
          const switched = s.epoch > current.epoch;
          if (switched || (s.epoch === current.epoch && s.alerts.join() !== current.alerts.join())) current = s;
          if (switched) await fanout.begin(`mode-${s.epoch}`, commandFor(s), { send: false, startedAt: s.since });
          else await fanout.refresh();
        }).catch((err) => o.logger.warn({ err }, 'emergency mode re-read failed'));
      }, o.syncMs ?? 2000);
      sync.unref?.();
      expiryTimer = setInterval(() => {
        checkExpiry().catch((err) => o.logger.warn({ err }, 'warning expiry check failed'));
      }, o.policy.expiryCheckMs);
      expiryTimer.unref?.();
    },
    settings: () => ({ policy: o.policy, fast, retryMs: o.retryMs ?? 3000, tightenOpenCases: o.tightenOpenCases ?? false }),
    configure(next, version) {
      const retime = next.policy.expiryCheckMs !== o.policy.expiryCheckMs;
      const refast = next.fast.pollMs !== fast.pollMs || next.fast.heartbeatMs !== fast.heartbeatMs;
      o = { ...o, policy: next.policy, retryMs: next.retryMs, tightenOpenCases: next.tightenOpenCases };
      fast = next.fast;
      fanout.setRetryMs(next.retryMs);
      // Gateways already in fast mode are told the new interval: a new command under the same epoch. Its id
      // names the configuration's stored version (the same on every worker, never reused, so acknowledgements
      // shared between workers from an earlier change do not count for it), else a count of this process's.
      if (refast && current?.mode === 'emergency') {
        const epoch = current.epoch;
        const id = `mode-${epoch}-c${version ?? `local${++reconfigured}`}`;
        // Only while the mode is still this emergency: a worker whose view lags a switch to normal must not
        // send fast mode after it (the edge applies any set-mode it gets).
        void store.load().then(async (s) => {
          if (s.mode === 'emergency' && s.epoch === epoch) await fanout.begin(id, commandFor(s));
        }).catch((err) => o.logger.warn({ err, epoch }, 'fast poll interval not sent'));
      }
      if (retime && expiryTimer) {
        clearInterval(expiryTimer);
        expiryTimer = setInterval(() => {
          checkExpiry().catch((err) => o.logger.warn({ err }, 'warning expiry check failed'));
        }, o.policy.expiryCheckMs);
        expiryTimer.unref?.();
      }
    },
    async stop() {
      clearInterval(sync);
      clearInterval(expiryTimer);
      sync = undefined;
      expiryTimer = undefined;
      fanout.stop();
      await o.acks?.close();
    },
    current: () => current,
    state() {
      if (!current) throw new CsError(EmergencyErrors.MODE_NOT_STARTED.code, 'emergency service not started');
      return current;
    },
    async switchMode(req) {
      return transact(async () => ({ ...req, source: 'manual', alerts: req.mode === 'normal' ? [] : undefined }));
    },
    async receiveWarning(xml, actor) {
      const alert = parseCap(xml);
      checkTimeliness(alert, o.now(), o.policy.clockSkewMs);
      const decision = decide(alert, o.policy);
      const base = { identifier: alert.identifier, sender: alert.sender, msgType: alert.msgType, status: alert.status, decision };
      let duplicate = false;
      // Recording the alert and switching are one transaction: a failed switch leaves no record
      // behind that would turn the sender's retry into a "duplicate".
      const state = await transact(async (trx, before) => {
        // CAP 1.2 3.2.1: sender and identifier name one message; a repeat is acknowledged, not re-applied.
        const r = await trx.insertInto('cap_alerts').values({
          sender: alert.sender, identifier: alert.identifier, sent: Date.parse(alert.sent), status: alert.status,
          msg_type: alert.msgType, decision: JSON.stringify(decision), received_at: o.now(),
        }).onConflict((oc) => oc.columns(['sender', 'identifier']).doNothing()).executeTakeFirst();
        duplicate = Number(r.numInsertedOrUpdatedRows ?? 0) === 0;
        return duplicate ? undefined : warningRequest(alert, decision, before, actor);
      });
      return { ...base, duplicate, state };
    },
    status() {
      return { state: this.state(), gateways: fanout.status(), unitsOnDuty: this.state().mode === 'emergency' };
    },
    async expired() {
      const s = this.state();
      return (await expiredWarnings(o.db, s, o.now())).map((w) => ({ ...w, message: expiryMessage(w, s) }));
    },
    checkExpiry,
  };
}
