import type { Logger } from '../../lib/log.ts';
import { topics } from '../../lib/topics.ts';
import type { AckRecord, SharedAcks } from './shared-acks.ts';

/**
 * Sends one mode command to every gateway and tracks each acknowledgement: the command carries the
 * mode epoch as its id; gateways that have not acknowledged are retried on a timer and at once when
 * they come back online (their retained birth on `cs/v1/{gw}/state`). With several workers
 * (`shared`), acknowledgements are recorded in Redis: a worker that did not switch follows the
 * command without sending it (`begin(..., { send: false })`) and shows the same acknowledgements.
 */

export interface ModeCommand {
  type: 'set-mode';
  mode: 'fast' | 'normal';
  pollMs?: number;
  heartbeatMs?: number;
}

interface Target { attempts: number; lastSentAt: number; ackedAt?: number; outcome?: string; message?: string }

export interface FanoutStatus {
  id: string | null;
  command: ModeCommand | null;
  startedAt: number | null;
  acknowledged: { gateway: string; at: string; afterMs: number; outcome: string }[];
  /** Gateways that have not acknowledged; `outcome` and `message` when one refused (it is retried). */
  missing: { gateway: string; attempts: number; lastSentAt: string; online: boolean; outcome: string | null; message: string | null }[];
  /** How many gateways the command went to (acknowledged + missing). */
  total: number;
  lastAckAfterMs: number | null;
}

export interface FanoutDeps {
  publish(topic: string, payload: string): Promise<void>;
  gateways(): string[];
  isOnline(gateway: string): boolean;
  now: () => number;
  logger: Logger;
  retryMs?: number;
  /** The acknowledgements shared with the other workers (shared-acks.ts). */
  shared?: SharedAcks;
}

export interface CommandFanout {
  /**
   * `send: false`: another worker switched and sends; this one only tracks the acknowledgements.
   * `startedAt`: when the switch was made (default now), so every worker reports the same `afterMs`.
   */
  begin(id: string, command: ModeCommand, opts?: { send?: boolean; startedAt?: number }): Promise<void>;
  /** Takes in the acknowledgements other workers recorded (shared); resolves when applied. */
  refresh(): Promise<void>;
  onAck(gateway: string, ack: { id?: unknown; outcome?: unknown; message?: unknown }): void;
  onOnline(gateway: string): void;
  /** Takes in the gateways the registry added since the command began (sent to once online). */
  follow(): void;
  status(): FanoutStatus;
  /** Resolves when every gateway has acknowledged the current command (for drills and tests). */
  settled(): Promise<void>;
  stop(): void;
  /** A new retry period (configuration as data), from the next retry on. */
  setRetryMs(ms: number): void;
}

export function createCommandFanout(deps: FanoutDeps): CommandFanout {
  let retryMs = deps.retryMs ?? 3000;
  let id: string | null = null;
  let command: ModeCommand | null = null;
  let startedAt: number | null = null;
  let targets = new Map<string, Target>();
  // Counted, not scanned: an ack must cost O(1) with 10,000 gateways (bench/RESULTS.md).
  let unacked = 0;
  let timer: NodeJS.Timeout | undefined;
  let waiters: (() => void)[] = [];
  let sending = true;
  // The gateway list the targets were last matched against (the live registry's, read on each use).
  let known: string[] | undefined;

  const payload = () => JSON.stringify({ id, ...command, ts: new Date(deps.now()).toISOString() });

  async function send(gw: string): Promise<void> {
    const t = targets.get(gw);
    if (!t || t.ackedAt || !id || !sending) return;
    t.attempts += 1;
    t.lastSentAt = deps.now();
    try {
      await deps.publish(topics.cmd(gw), payload());
    } catch (err) {
      deps.logger.warn({ err, gateway: gw, id }, 'mode command not sent; will retry');
    }
  }

  function pending(): string[] {
    return [...targets].filter(([, t]) => !t.ackedAt).map(([gw]) => gw);
  }

  /** Gateways added to the registry since the command began become targets too; those online are sent to (`sendNow`). */
  function follow(sendNow = true): void {
    if (!id) return;
    const list = deps.gateways();
    if (list === known) return;
    known = list;
    for (const gw of list) {
      if (targets.has(gw)) continue;
      targets.set(gw, { attempts: 0, lastSentAt: 0 });
      unacked += 1;
      if (sendNow && sending && deps.isOnline(gw)) void send(gw);
    }
    if (sending && unacked > 0 && timer === undefined) schedule();
  }

  function notify(): void {
    if (unacked > 0) return;
    for (const w of waiters.splice(0)) w();
  }

  function schedule(): void {
    clearInterval(timer);
    timer = setInterval(() => {
      // Every gateway has acknowledged: nothing left to retry until the next command.
      if (unacked === 0) {
        clearInterval(timer);
        timer = undefined;
        return;
      }
      // Retry only gateways that are online; an offline one is sent to when its birth arrives.
      for (const gw of pending()) {
        const t = targets.get(gw)!;
        if (deps.isOnline(gw) && deps.now() - t.lastSentAt >= retryMs) void send(gw);
      }
    }, Math.max(50, Math.floor(retryMs / 2)));
    timer.unref?.();
  }

  /** An acknowledgement (received or recorded by another worker) applied to its target. */
  function apply(gw: string, r: AckRecord): void {
    const t = targets.get(gw);
    if (!t || t.ackedAt) return;
    t.outcome = r.outcome;
    t.message = r.message;
    if (r.outcome !== 'ok') return;
    t.ackedAt = r.at;
    unacked -= 1;
  }

  async function refresh(): Promise<void> {
    if (!deps.shared || !id || unacked === 0) return;
    const forId = id;
    const recorded = await deps.shared.load(forId);
    if (id !== forId) return;
    for (const [gw, r] of recorded) apply(gw, r);
    notify();
  }

  return {
    refresh,
    async begin(newId, cmd, opts) {
      id = newId;
      command = cmd;
      startedAt = opts?.startedAt ?? deps.now();
      sending = opts?.send ?? true;
      known = deps.gateways();
      targets = new Map(known.map((gw) => [gw, { attempts: 0, lastSentAt: 0 }]));
      unacked = targets.size;
      // What other workers recorded (a restart, or a switch made elsewhere) is not sent again.
      await refresh().catch((err) => deps.logger.warn({ err, id: newId }, 'shared acknowledgements not read'));
      // The sends are not awaited: the switch is done once recorded; acks are tracked as they come.
      for (const gw of targets.keys()) void send(gw);
      if (sending) schedule();
      else { clearInterval(timer); timer = undefined; }
      notify();
    },
    onAck(gw, ack) {
      const t = targets.get(gw);
      if (!t || ack.id !== id || t.ackedAt) return;
      const r: AckRecord = { at: deps.now(), outcome: String(ack.outcome), ...(typeof ack.message === 'string' ? { message: ack.message } : {}) };
      deps.shared?.record(id!, gw, r);
      // A refusal is recorded and retried: the gateway may accept once its config allows it.
      if (r.outcome !== 'ok') deps.logger.warn({ gateway: gw, id, outcome: ack.outcome, message: ack.message }, 'gateway refused the mode command');
      apply(gw, r);
      notify();
    },
    onOnline(gw) {
      if (!targets.has(gw)) follow(false);
      const t = targets.get(gw);
      if (t && !t.ackedAt) void send(gw);
    },
    status() {
      const acknowledged = [...targets].filter(([, t]) => t.ackedAt).map(([gateway, t]) => ({
        gateway, at: new Date(t.ackedAt!).toISOString(), afterMs: t.ackedAt! - (startedAt ?? t.ackedAt!), outcome: t.outcome ?? 'ok',
      }));
      return {
        id, command, startedAt,
        acknowledged,
        missing: pending().map((gateway) => {
          const t = targets.get(gateway)!;
          return {
            gateway, attempts: t.attempts, lastSentAt: new Date(t.lastSentAt || startedAt || 0).toISOString(), online: deps.isOnline(gateway),
            outcome: t.outcome ?? null, message: t.message ?? null,
          };
        }),
        total: targets.size,
        lastAckAfterMs: acknowledged.length && unacked === 0 ? Math.max(...acknowledged.map((a) => a.afterMs)) : null,
      };
    },
    follow: () => follow(),
    settled() {
      return unacked > 0 ? new Promise((r) => waiters.push(r)) : Promise.resolve();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      waiters = [];
    },
    setRetryMs(ms) {
      retryMs = ms;
      if (timer !== undefined) schedule();
    },
  };
}
