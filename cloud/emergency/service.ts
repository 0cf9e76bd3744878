import { sql, type Kysely } from 'kysely';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { parseCap, type CapAlert } from './cap.ts';
import { decide, levelRank, type Decision, type Level, type WarningPolicy } from './policy.ts';
import { createModeStore, type ModeState, type ModeStore, type SwitchRequest } from './mode.ts';
import { OPEN_CASE_PREDICATE } from '../db/migrations.ts';
import { createCommandFanout, type CommandFanout, type FanoutStatus, type ModeCommand } from './fanout.ts';
import { EmergencyErrors } from './errors.ts';

/**
 * Emergency mode, all effects at once (docs/domain.md#emergency-mode): the audited state, every gateway told to
 * poll fast (acknowledgements tracked and retried), open emergency-class cases tightened to the
 * 12-hour cap, units on duty. Leaving restores every gateway's normal mode; cases keep their flag.
 */

export interface EmergencyOptions {
  db: Kysely<any>;
  write: <T>(fn: (trx: Kysely<any>) => Promise<T>) => Promise<T>;
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
  /** Pull in the deadlines of open cases when the mode starts. */
  tightenOpenCases?: boolean;
  /** PostgreSQL: lock the mode row while switching (several workers). */
  lockRow?: boolean;
  /** How often to re-read the mode another worker may have switched (default 2 s). */
  syncMs?: number;
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
  switchMode(req: { mode: 'normal' | 'emergency'; level?: Level; actor: string; role: string; reason: string }): Promise<ModeState>;
  receiveWarning(xml: string | Buffer, actor: string): Promise<WarningResult>;
  status(): { state: ModeState; gateways: FanoutStatus; unitsOnDuty: boolean };
}

export function buildEmergency(o: EmergencyOptions): Emergency {
  const capHours = o.capHours ?? 12;
  const fast = o.fast ?? { pollMs: 200 };
  const store = createModeStore({ db: o.db, write: o.write, now: o.now, lockRow: o.lockRow });
  const fanout = createCommandFanout({ publish: o.publish, gateways: o.gateways, isOnline: o.isOnline, now: o.now, logger: o.logger, retryMs: o.retryMs });
  let current: ModeState | undefined;
  let sync: NodeJS.Timeout | undefined;

  const commandFor = (s: ModeState): ModeCommand => (s.mode === 'emergency'
    ? { type: 'set-mode', mode: 'fast', pollMs: fast.pollMs, heartbeatMs: fast.heartbeatMs }
    : { type: 'set-mode', mode: 'normal' });

  async function tighten(s: ModeState): Promise<number> {
    if (!o.tightenOpenCases) return 0;
    const cap = s.since + capHours * 3600_000;
    // Open hazard cases (not device health) become emergency cases due within the cap.
    const r = await o.write((trx) => trx.updateTable('cases')
      // CASE rather than least()/min(): the one spelling SQLite and PostgreSQL share.
      .set({ emergency: 1, emergency_epoch: s.epoch, deadline_at: sql`case when deadline_at > ${cap} then ${cap} else deadline_at end` })
      .where(OPEN_CASE_PREDICATE)
      .where('class', '!=', 'device-health')
      .executeTakeFirst());
    return Number(r.numUpdatedRows ?? 0);
  }

  async function effects(after: ModeState, before: ModeState): Promise<void> {
    o.logger.warn({ mode: after.mode, level: after.level, actor: after.actor, reason: after.reason, epoch: after.epoch, from: before.mode }, 'emergency mode switched');
    await fanout.begin(`mode-${after.epoch}`, commandFor(after));
    if (after.mode === 'emergency' && before.mode !== 'emergency') {
      const n = await tighten(after).catch((err) => { o.logger.error({ err }, 'tightening open cases failed'); return 0; });
      o.logger.info({ cases: n }, 'open cases tightened to the emergency cap');
    }
  }

  /** Applies what `decide` asks in one transaction (with the state row held); effects follow on this worker. */
  async function transact(decide: Parameters<ModeStore['transact']>[0]): Promise<ModeState> {
    const r = await store.transact(decide);
    if (!r) return current ?? await store.load();
    current = r.after;
    if (r.changed) await effects(r.after, r.before);
    return r.after;
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
      // Another worker may switch the mode: follow it, so rules and deadlines here agree. The
      // worker that switched does the fan-out.
      sync = setInterval(() => {
        store.load().then((s) => { if (current && s.epoch !== current.epoch) current = s; }, (err) => o.logger.warn({ err }, 'emergency mode re-read failed'));
      }, o.syncMs ?? 2000);
      sync.unref?.();
    },
    async stop() {
      clearInterval(sync);
      sync = undefined;
      fanout.stop();
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
  };
}
