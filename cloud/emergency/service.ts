import { sql, type Kysely } from 'kysely';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { parseCap } from './cap.ts';
import { decide, levelRank, type Decision, type Level, type WarningPolicy } from './policy.ts';
import { createModeStore, type ModeState, type ModeStore, type Source } from './mode.ts';
import { createCommandFanout, type CommandFanout, type FanoutStatus, type ModeCommand } from './fanout.ts';
import { EmergencyErrors } from './errors.ts';

/**
 * Emergency mode, all effects at once (DESIGN section 4): the audited state, every gateway told to
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
  const store = createModeStore({ db: o.db, write: o.write, now: o.now });
  const fanout = createCommandFanout({ publish: o.publish, gateways: o.gateways, isOnline: o.isOnline, now: o.now, logger: o.logger, retryMs: o.retryMs });
  let current: ModeState | undefined;

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
      .where('state', 'not in', ['closed', 'void'])
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

  async function apply(req: { mode: 'normal' | 'emergency'; level?: Level; actor: string; role: string; reason: string; source: Source; alertId?: string; alerts?: string[] }): Promise<ModeState> {
    const { before, after, changed } = await store.apply(req);
    current = after;
    if (changed) await effects(after, before);
    return after;
  }

  return {
    store,
    fanout,
    async start() {
      current = await store.load();
      // A restart during emergency keeps the mode: gateways are told again (idempotent on the epoch).
      if (current.mode === 'emergency') await fanout.begin(`mode-${current.epoch}`, commandFor(current));
    },
    async stop() {
      fanout.stop();
    },
    current: () => current,
    state() {
      if (!current) throw new CsError(EmergencyErrors.MODE_INVALID.code, 'emergency service not started');
      return current;
    },
    async switchMode(req) {
      if (req.mode === 'emergency' && !req.level) throw new CsError(EmergencyErrors.MODE_INVALID.code, 'level is required to enter emergency mode (IV, III, II or I)');
      return apply({ ...req, source: 'manual', alerts: req.mode === 'normal' ? [] : undefined });
    },
    async receiveWarning(xml, actor) {
      const alert = parseCap(xml);
      const decision = decide(alert, o.policy);
      // CAP 1.2 3.2.1: sender and identifier name one message; a repeat is acknowledged, not re-applied.
      const inserted = await o.write(async (trx) => {
        const r = await trx.insertInto('cap_alerts').values({
          sender: alert.sender, identifier: alert.identifier, sent: Date.parse(alert.sent), status: alert.status,
          msg_type: alert.msgType, decision: JSON.stringify(decision), received_at: o.now(),
        }).onConflict((oc) => oc.columns(['sender', 'identifier']).doNothing()).executeTakeFirst();
        return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
      });
      const base = { identifier: alert.identifier, sender: alert.sender, msgType: alert.msgType, status: alert.status, decision };
      if (!inserted) return { ...base, duplicate: true, state: current ?? await store.load() };
      const s = current ?? await store.load();
      let state = s;
      if (decision.action === 'enter') {
        const superseded = new Set(alert.references.map((r) => r.identifier));
        const alerts = [...s.alerts.filter((a) => !superseded.has(a)), alert.identifier];
        // A commander's manual switch is never lowered by a warning; a warning may raise it.
        const keepManual = s.mode === 'emergency' && s.source === 'manual';
        const level = keepManual && levelRank(s.level!) >= levelRank(decision.level) ? s.level! : decision.level;
        state = await apply({ mode: 'emergency', level, actor, role: 'warning-feed', reason: `${decision.event}${decision.headline ? `: ${decision.headline}` : ''} (CAP ${alert.identifier})`, source: keepManual ? 'manual' : 'warning', alertId: alert.identifier, alerts });
      } else if (decision.action === 'cancel') {
        const lifted = new Set(decision.references);
        const alerts = s.alerts.filter((a) => !lifted.has(a));
        if (s.mode === 'emergency' && s.source === 'warning' && alerts.length === 0) {
          state = await apply({ mode: 'normal', actor, role: 'warning-feed', reason: `warning lifted (CAP ${alert.identifier})`, source: 'warning', alertId: alert.identifier, alerts: [] });
        } else if (s.mode === 'emergency') {
          state = await apply({ mode: 'emergency', level: s.level!, actor, role: 'warning-feed', reason: `alerts lifted (CAP ${alert.identifier}); mode held`, source: s.source, alertId: alert.identifier, alerts });
        }
      }
      return { ...base, duplicate: false, state };
    },
    status() {
      return { state: this.state(), gateways: fanout.status(), unitsOnDuty: this.state().mode === 'emergency' };
    },
  };
}
