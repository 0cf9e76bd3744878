import { ref } from 'vue';
import type { CsEvent, CsEventType } from '../../../events.ts';
import { api, ApiError } from './api';

/**
 * The live event stream (GET /api/events, server-sent events; docs/architecture.md#events). One
 * EventSource per page, shared by every view. When the server restarts, the stream reconnects by
 * itself; `state` says so ('reconnecting') and every subscriber's `resync` runs once it is back,
 * because events sent while the page was away are not replayed: pages reload what they show.
 * A refused stream whose session ended (GET /api/session answers 401) is not retried: that 401
 * sends the app to sign-in.
 */

export type LiveState = 'off' | 'connecting' | 'on' | 'reconnecting';

/** An event as the cloud streams it (cloud/events.ts). */
export type LiveEvent = CsEvent;

/** The event names the cloud sends (cloud/events.ts CsEventType). */
const TYPES: CsEventType[] = [
  'case.opened', 'case.updated', 'case.reopened', 'case.transition', 'case.reminder', 'case.escalated',
  'alarm.raised', 'alarm.cleared', 'alarm.acknowledged', 'emergency.warning-expired',
];

export const liveState = ref<LiveState>('off');

interface Subscriber { onEvent(e: LiveEvent): void; resync?(): void }
const subscribers = new Set<Subscriber>();
let source: EventSource | null = null;
let everOpen = false;
let retry: ReturnType<typeof setTimeout> | null = null;
let backoff = 1000;
/** Bumped by close(): a check still under way from before then schedules nothing. */
let generation = 0;

/** Whether the session ended; the 401 itself runs the app's unauthorised handler (api.ts). */
async function sessionEnded(): Promise<boolean> {
  try {
    await api('/api/session');
    return false;
  } catch (err) {
    return err instanceof ApiError && err.status === 401;
  }
}

function open(): void {
  if (source) return;
  liveState.value = everOpen ? 'reconnecting' : 'connecting';
  const es = new EventSource('/api/events', { withCredentials: true });
  source = es;
  es.onopen = () => {
    const wasBack = everOpen;
    everOpen = true;
    backoff = 1000;
    liveState.value = 'on';
    if (wasBack) for (const s of subscribers) s.resync?.();
  };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // The server refused the stream: EventSource cannot see why. A session that ended goes to
      // sign-in (the 401 from /api/session); otherwise (restarting) try again with back-off.
      source = null;
      liveState.value = 'reconnecting';
      const gen = generation;
      void sessionEnded().then((ended) => {
        if (gen !== generation || source) return;
        if (ended) { liveState.value = 'off'; return; }
        retry ??= setTimeout(() => { retry = null; if (subscribers.size) open(); }, backoff);
        backoff = Math.min(backoff * 2, 15_000);
      });
    } else {
      liveState.value = 'reconnecting';
    }
  };
  for (const type of TYPES) {
    es.addEventListener(type, (m) => {
      let e: LiveEvent;
      try { e = JSON.parse((m as MessageEvent).data) as LiveEvent; } catch { return; }
      for (const s of subscribers) {
        try { s.onEvent(e); } catch (err) { console.error(err); }
      }
    });
  }
}

/** Listens to live events until the returned function is called (a page's unmount). */
export function subscribe(onEvent: (e: LiveEvent) => void, resync?: () => void): () => void {
  const s: Subscriber = { onEvent, resync };
  subscribers.add(s);
  open();
  return () => {
    subscribers.delete(s);
    if (subscribers.size === 0) close();
  };
}

/** Closes the stream (sign-out). */
export function close(): void {
  generation++;
  if (retry) { clearTimeout(retry); retry = null; }
  source?.close();
  source = null;
  everOpen = false;
  liveState.value = 'off';
}
