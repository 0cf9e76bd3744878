/**
 * Case and alarm events: one in-process bus per cloud worker. Every committed change is emitted
 * here; the live stream (`GET /api/events`, server-sent events) and the MQTT publisher
 * (`cs/v1/events/{case|alarm}/{action}`, QoS 1) read it. Events are emitted after the
 * transaction commits, so a listener never sees a change that was rolled back.
 * With several workers (cloud/events-relay.ts) the events of the others come in through `relay`
 * and reach only the listeners that asked for them (the live stream); each worker publishes its
 * own on MQTT, so an integration gets every event once.
 */

export type CsEventType =
  | 'case.opened' | 'case.updated' | 'case.reopened' | 'case.transition' | 'case.reminder' | 'case.escalated'
  | 'alarm.raised' | 'alarm.cleared' | 'alarm.acknowledged'
  /** The warning holding emergency mode expired with no Update or Cancel (cloud/emergency/expiry.ts). */
  | 'emergency.warning-expired';

export interface CsEvent {
  /** Per-worker sequence number (the SSE id); a relayed event gets the next one of the worker it reaches. */
  seq: number;
  type: CsEventType;
  at: string;
  caseId?: string;
  alarmId?: string;
  unit?: string;
  device?: string;
  hazard?: string;
  state?: string;
  data?: Record<string, unknown>;
}

export type EventInput = Omit<CsEvent, 'seq'>;

export interface EventBus {
  emit(e: EventInput): void;
  /** `remote`: also the events other workers emitted (relayed); default this worker's only. */
  subscribe(fn: (e: CsEvent) => void, opts?: { remote?: boolean }): () => void;
  /** An event another worker emitted: to the listeners that asked for remote ones. */
  relay(e: EventInput): void;
  listeners(): number;
}

export function createEventBus(): EventBus {
  const subs = new Map<(e: CsEvent) => void, boolean>();
  let seq = 0;
  const deliver = (e: EventInput & { seq?: number }, remote: boolean) => {
    const { seq: _theirs, ...rest } = e;
    const ev: CsEvent = { seq: ++seq, ...rest };
    for (const [fn, wantsRemote] of subs) {
      if (remote && !wantsRemote) continue;
      try { fn(ev); } catch { /* a listener never breaks the emitter */ }
    }
  };
  return {
    emit: (e) => deliver(e, false),
    relay: (e) => deliver(e, true),
    subscribe(fn, opts) {
      // Its own entry per subscription, so one function subscribed twice is two listeners.
      const f = (e: CsEvent) => fn(e);
      subs.set(f, opts?.remote ?? false);
      return () => { subs.delete(f); };
    },
    listeners: () => subs.size,
  };
}

/** MQTT topic of an event: `cs/v1/events/case/opened`, `cs/v1/events/alarm/raised`... */
export function eventTopic(type: CsEventType): string {
  const [kind, action] = type.split('.');
  return `cs/v1/events/${kind}/${action}`;
}
