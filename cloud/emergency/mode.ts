import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import type { Level } from './policy.ts';
import { EmergencyErrors } from './errors.ts';

/**
 * Emergency mode as an explicit, audited state: normal, or emergency at a level; who or what
 * switched it, when and why. Stored in the database, so it survives a restart and is shared by
 * every cloud worker; each switch starts a new epoch and appends to the log.
 */

export type Mode = 'normal' | 'emergency';
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

type Writer = <T>(fn: (trx: Kysely<any>) => Promise<T>) => Promise<T>;

export interface ModeStore extends EventEmitter {
  /** The current state, read from the database. */
  load(): Promise<ModeState>;
  /**
   * Decides and applies a switch in one transaction that holds the state row, so concurrent
   * switches on several workers serialise: `decide` sees the current state (and may write more in
   * the same transaction) and returns the request, or undefined to change nothing.
   */
  transact(decide: (trx: Kysely<any>, before: ModeState) => Promise<SwitchRequest | undefined>): Promise<{ before: ModeState; after: ModeState; changed: boolean } | undefined>;
  /** `transact` with a fixed request. */
  apply(req: SwitchRequest): Promise<{ before: ModeState; after: ModeState; changed: boolean }>;
  log(limit?: number): Promise<ModeLogEntry[]>;
}

function rowToState(r: Record<string, any> | undefined): ModeState {
  if (!r) return { ...INITIAL_STATE };
  return {
    mode: r.mode, level: r.level ?? null, since: Number(r.since), actor: r.actor, reason: r.reason,
    source: r.source, alerts: JSON.parse(r.alerts_json), epoch: Number(r.epoch),
  };
}

const stateRow = (s: ModeState) => ({
  mode: s.mode, level: s.level, since: s.since, actor: s.actor, reason: s.reason, source: s.source,
  alerts_json: JSON.stringify(s.alerts), epoch: s.epoch,
});

export function createModeStore(deps: { db: Kysely<any>; write: Writer; now: () => number; /** PostgreSQL: lock the row (SQLite writes are serialised already). */ lockRow?: boolean }): ModeStore {
  const events = new EventEmitter();

  async function load(): Promise<ModeState> {
    return rowToState(await deps.db.selectFrom('emergency_state').selectAll().where('id', '=', 1).executeTakeFirst());
  }

  async function transact(decide: (trx: Kysely<any>, before: ModeState) => Promise<SwitchRequest | undefined>) {
    const result = await deps.write(async (trx) => {
      // The row exists from the first switch on; SELECT ... FOR UPDATE then serialises workers.
      await trx.insertInto('emergency_state').values({ id: 1, ...stateRow(INITIAL_STATE) }).onConflict((oc) => oc.column('id').doNothing()).execute();
      let q = trx.selectFrom('emergency_state').selectAll().where('id', '=', 1);
      if (deps.lockRow) q = q.forUpdate();
      const before = rowToState(await q.executeTakeFirst());
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
      const last = await trx.selectFrom('emergency_log').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
      await trx.insertInto('emergency_log').values({
        seq: Number(last?.m ?? 0) + 1, epoch: after.epoch, at,
        action: changed ? (req.mode === 'emergency' ? (before.mode === 'emergency' ? 'relevel' : 'enter') : 'leave') : 'hold',
        mode: after.mode, level: after.level, actor: req.actor, role: req.role, reason: req.reason, alert_id: req.alertId ?? null,
      }).execute();
      return { before, after, changed };
    });
    if (result?.changed) events.emit('changed', result.after, result.before);
    return result;
  }

  async function apply(req: SwitchRequest) {
    return (await transact(async () => req))!;
  }

  async function log(limit = 100): Promise<ModeLogEntry[]> {
    const rows = await deps.db.selectFrom('emergency_log').selectAll().orderBy('seq', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      seq: Number(r.seq), epoch: Number(r.epoch), at: Number(r.at), action: r.action, mode: r.mode, level: r.level ?? null,
      actor: r.actor, role: r.role, reason: r.reason, alertId: r.alert_id ?? null,
    }));
  }

  return Object.assign(events, { load, transact, apply, log });
}
