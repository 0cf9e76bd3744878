/**
 * Case and alarm events: one in-process bus per cloud worker. Every committed change is emitted
 * here; the live stream (`GET /api/events`, server-sent events) and the MQTT publisher
 * (`cs/v1/events/{case|alarm}/{action}`, QoS 1) read it. Events are emitted after the
 * transaction commits, so a listener never sees a change that was rolled back.
 */

export type CsEventType =
  | 'case.opened' | 'case.updated' | 'case.reopened' | 'case.transition' | 'case.reminder' | 'case.escalated'
  | 'alarm.raised' | 'alarm.cleared' | 'alarm.acknowledged'
  /** The warning holding emergency mode expired with no Update or Cancel (cloud/emergency/expiry.ts). */
  | 'emergency.warning-expired';

export interface CsEvent {
  /** Per-worker sequence number (the SSE id). */
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
  subscribe(fn: (e: CsEvent) => void): () => void;
  listeners(): number;
}

export function createEventBus(): EventBus {
  const subs = new Set<(e: CsEvent) => void>();
  let seq = 0;
  return {
    emit(e) {
      const ev: CsEvent = { seq: ++seq, ...e };
      for (const fn of subs) {
        try { fn(ev); } catch { /* a listener never breaks the emitter */ }
      }
    },
    subscribe(fn) {
      subs.add(fn);
      return () => { subs.delete(fn); };
    },
    listeners: () => subs.size,
  };
}

/** MQTT topic of an event: `cs/v1/events/case/opened`, `cs/v1/events/alarm/raised`... */
export function eventTopic(type: CsEventType): string {
  const [kind, action] = type.split('.');
  return `cs/v1/events/${kind}/${action}`;
}
