import { EventEmitter } from 'node:events';
import type { Kysely, Selectable } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import type { CityMode } from '../../lib/vocabulary.ts';
import type { DB, EmergencyStateTable } from '../db/schema.ts';
import type { Level } from './policy.ts';
import { EmergencyErrors } from './errors.ts';
import { appendToLog } from '../audit/chain.ts';
import { EMERGENCY_LOG } from '../audit/emergency-log.ts';

/**
 * Emergency mode as an explicit, audited state: normal, or emergency at a level; who or what
 * switched it, when and why. Stored in the database, so it survives a restart and is shared by
 * every cloud worker; each switch starts a new epoch and appends to the log, hash-chained in the
 * switch's transaction (docs/architecture.md#audit-chains).
 */

export type Mode = CityMode;
export type Source = 'manual' | 'warning' | 'initial';

export interface ModeState {
  mode: Mode;
  level: Level | null;
  since: number;
  actor: string;
  reason: string;
  source: Source;
  /** CAP alert identifiers that hold the mode (source `warning`). */
  alerts: string[];
  /** Increases with every switch; commands to gateways carry it. */
  epoch: number;
}

export interface ModeLogEntry {
  seq: number; epoch: number; at: number; action: string; mode: Mode; level: Level | null;
  actor: string; role: string; reason: string; alertId: string | null;
}

export interface SwitchRequest {
  mode: Mode;
  level?: Level;
  actor: string;
  role: string;
  reason: string;
  source: Source;
  alertId?: string;
  /** For warnings: the alert identifiers that hold the mode afterwards. */
  alerts?: string[];
}

export const INITIAL_STATE: ModeState = { mode: 'normal', level: null, since: 0, actor: 'system', reason: 'initial state', source: 'initial', alerts: [], epoch: 0 };

type Writer = <T>(fn: (trx: Kysely<DB>) => Promise<T>) => Promise<T>;

/** Runs in the switch's own transaction once the new state is written (e.g. tightening open cases). */
export type WithinSwitch = (trx: Kysely<DB>, after: ModeState, before: ModeState) => Promise<void>;

export interface ModeStore extends EventEmitter {
  /** The current state, read from the database. */
  load(): Promise<ModeState>;
  /**
   * Decides and applies a switch in one transaction that holds the state row, so concurrent
   * switches on several workers serialise: `decide` sees the current state (and may write more in
   * the same transaction) and returns the request, or undefined to change nothing.
   */
  transact(decide: (trx: Kysely<DB>, before: ModeState) => Promise<SwitchRequest | undefined>, within?: WithinSwitch): Promise<{ before: ModeState; after: ModeState; changed: boolean } | undefined>;
  /** `transact` with a fixed request. */
  apply(req: SwitchRequest): Promise<{ before: ModeState; after: ModeState; changed: boolean }>;
  /**
   * Appends an entry that changes no state (e.g. a warning expired) once per epoch, action and
   * alert; true when this call appended it (so exactly one worker reports it).
   */
  note(entry: { epoch: number; action: string; actor: string; role: string; reason: string; alertId: string }): Promise<boolean>;
  log(limit?: number): Promise<ModeLogEntry[]>;
}

function rowToState(r: Selectable<EmergencyStateTable> | undefined): ModeState {
  if (!r) return { ...INITIAL_STATE };
  return {
    mode: r.mode as Mode, level: (r.level as Level | null) ?? null, since: Number(r.since), actor: r.actor, reason: r.reason,
    source: r.source as Source, alerts: JSON.parse(r.alerts_json) as string[], epoch: Number(r.epoch),
  };
}

const stateRow = (s: ModeState) => ({
  mode: s.mode, level: s.level, since: s.since, actor: s.actor, reason: s.reason, source: s.source,
  alerts_json: JSON.stringify(s.alerts), epoch: s.epoch,
});

export function createModeStore(deps: { db: Kysely<DB>; write: Writer; now: () => number; /** PostgreSQL: lock the row (SQLite writes are serialised already). */ lockRow?: boolean }): ModeStore {
  const events = new EventEmitter();

  async function load(): Promise<ModeState> {
    return rowToState(await deps.db.selectFrom('emergency_state').selectAll().where('id', '=', 1).executeTakeFirst());
  }

  /** The state row, created on first use and held (PostgreSQL: FOR UPDATE) so workers serialise. */
  async function hold(trx: Kysely<DB>): Promise<ModeState> {
    await trx.insertInto('emergency_state').values({ id: 1, ...stateRow(INITIAL_STATE) }).onConflict((oc) => oc.column('id').doNothing()).execute();
    let q = trx.selectFrom('emergency_state').selectAll().where('id', '=', 1);
    if (deps.lockRow) q = q.forUpdate();
    return rowToState(await q.executeTakeFirst());
  }

  async function transact(decide: (trx: Kysely<DB>, before: ModeState) => Promise<SwitchRequest | undefined>, within?: WithinSwitch) {
    const result = await deps.write(async (trx) => {
      const before = await hold(trx);
      const req = await decide(trx, before);
      if (!req) return undefined;
      if (req.mode === 'emergency' && !req.level) throw new CsError(EmergencyErrors.MODE_INVALID.code, 'emergency mode needs a level (IV, III, II or I)');
      const level = req.mode === 'emergency' ? req.level! : null;
      const alerts = req.alerts ?? (req.mode === 'normal' ? [] : before.alerts);
      const changed = before.mode !== req.mode || before.level !== level;
      const at = deps.now();
      const after: ModeState = changed
        ? { mode: req.mode, level, since: at, actor: req.actor, reason: req.reason, source: req.source, alerts, epoch: before.epoch + 1 }
        : { ...before, alerts };
      await trx.updateTable('emergency_state').set(stateRow(after)).where('id', '=', 1).execute();
      await appendToLog(trx, EMERGENCY_LOG, (seq) => ({
        seq, epoch: after.epoch, at,
        action: changed ? (req.mode === 'emergency' ? (before.mode === 'emergency' ? 'relevel' : 'enter') : 'leave') : 'hold',
        mode: after.mode, level: after.level, actor: req.actor, role: req.role, reason: req.reason, alert_id: req.alertId ?? null,
      }));
      if (changed) await within?.(trx, after, before);
      return { before, after, changed };
    });
    if (result?.changed) events.emit('changed', result.after, result.before);
    return result;
  }

  async function apply(req: SwitchRequest) {
    return (await transact(async () => req))!;
  }

  async function note(e: { epoch: number; action: string; actor: string; role: string; reason: string; alertId: string }): Promise<boolean> {
    return deps.write(async (trx) => {
      const s = await hold(trx);
      if (s.epoch !== e.epoch) return false;
      const seen = await trx.selectFrom('emergency_log').select('seq')
        .where('epoch', '=', e.epoch).where('action', '=', e.action).where('alert_id', '=', e.alertId).executeTakeFirst();
      if (seen) return false;
      await appendToLog(trx, EMERGENCY_LOG, (seq) => ({
        seq, epoch: e.epoch, at: deps.now(), action: e.action, mode: s.mode, level: s.level,
        actor: e.actor, role: e.role, reason: e.reason, alert_id: e.alertId,
      }));
      return true;
    });
  }

  async function log(limit = 100): Promise<ModeLogEntry[]> {
    const rows = await deps.db.selectFrom('emergency_log').selectAll().orderBy('seq', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      seq: Number(r.seq), epoch: Number(r.epoch), at: Number(r.at), action: r.action, mode: r.mode as Mode, level: (r.level as Level | null) ?? null,
      actor: r.actor, role: r.role, reason: r.reason, alertId: r.alert_id ?? null,
    }));
  }

  return Object.assign(events, { load, transact, apply, note, log });
}
