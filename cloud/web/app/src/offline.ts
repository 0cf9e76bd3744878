import { computed, shallowRef } from 'vue';
import { createStore, del, entries, set } from 'idb-keyval';
import { api, ApiError } from './api';
import { session } from './session';

/**
 * The crew's offline queue (docs/domain.md#milestones-and-extension-requests): an action tapped on
 * the phone is written to IndexedDB first, with its photos as Blobs and a client-made `actionId`,
 * then sent; without a connection it waits and is sent when the connection returns ('online'
 * event, the next page load, the live stream's reconnect). The server applies an actionId once and
 * answers a resend with the case as it is, so a send cut off after the server wrote it is harmless.
 * A refusal (4xx: the case's state changed, another unit's case) is kept and shown, not retried.
 * Actions belong to the user who tapped them: on a shared phone only their own session sends them.
 * An inspector's new case rides the same queue: caseId '', action 'register', its clientId the actionId.
 */

export interface QueuedPhoto { blob: Blob; name: string; uploadedId?: string }
export interface QueuedAction {
  actionId: string;
  /** Who tapped it: only that user's session sends it (a shared phone signed in as someone else does not). */
  user: string;
  caseId: string;
  action: string;
  body: Record<string, unknown>;
  photos: QueuedPhoto[];
  createdAt: number;
  /** waiting: to be sent; sending: on its way; refused: the server said no (kept until dismissed). */
  status: 'waiting' | 'sending' | 'refused';
  error?: { status: number; code: string; message: string };
}

const store = createStore('citysteward-crew', 'actions');

/** Everything on this phone not yet accepted by the server (shallow: IndexedDB cannot store reactive proxies). */
const all = shallowRef<QueuedAction[]>([]);
/** The signed-in user's actions not yet accepted by the server, oldest first (for indicators and the case page). */
export const queued = computed(() => all.value.filter((a) => a.user === session.user?.username));

type SentListener = (a: QueuedAction, result: unknown) => void;
const sentListeners = new Set<SentListener>();
/** Called for each action the server accepted (the pages reload what they show). */
export function onSent(fn: SentListener): () => void {
  sentListeners.add(fn);
  return () => sentListeners.delete(fn);
}

async function load(): Promise<void> {
  const stored = (await entries<string, QueuedAction>(store)).map(([, v]) => v);
  // Merged with what was tapped while loading (already written, maybe not yet read back).
  const byId = new Map([...stored, ...all.value].map((a) => [a.actionId, a]));
  all.value = [...byId.values()].sort((a, b) => a.createdAt - b.createdAt);
}

async function save(a: QueuedAction): Promise<void> {
  await set(a.actionId, a, store);
  const rest = all.value.filter((x) => x.actionId !== a.actionId);
  all.value = [...rest, { ...a }].sort((x, y) => x.createdAt - y.createdAt);
}

async function remove(actionId: string): Promise<void> {
  await del(actionId, store);
  all.value = all.value.filter((x) => x.actionId !== actionId);
}

/** Keeps the action on the phone, then tries to send everything waiting. */
export async function enqueue(a: Omit<QueuedAction, 'status' | 'createdAt' | 'user'>): Promise<void> {
  await save({ ...a, user: session.user?.username ?? '', createdAt: Date.now(), status: 'waiting' });
  void flush();
}

/** Forgets a refused action (the user read why). */
export async function dismiss(actionId: string): Promise<void> {
  await remove(actionId);
}

async function sendOne(a: QueuedAction): Promise<unknown> {
  // Photos first: content-addressed on the server, so uploading one again after a cut-off is harmless.
  const ids: string[] = [];
  for (const p of a.photos) {
    if (!p.uploadedId) {
      const form = new FormData();
      form.append('photo', p.blob, p.name);
      // A new case (the inspector's page: caseId '') uploads its photos before the case exists.
      const url = a.caseId ? `/api/cases/${encodeURIComponent(a.caseId)}/photos` : '/api/photos';
      const r = await api<{ photos: { id: string }[] }>(url, { method: 'POST', body: form });
      p.uploadedId = r.photos[0]?.id;
      await set(a.actionId, a, store);
    }
    if (p.uploadedId) ids.push(p.uploadedId);
  }
  if (!a.caseId) return api('/api/cases', { method: 'POST', body: { ...a.body, clientId: a.actionId, ...(ids.length ? { photos: ids } : {}) } });
  const body = { ...a.body, actionId: a.actionId, ...(ids.length ? { photos: ids } : {}) };
  return api(`/api/cases/${encodeURIComponent(a.caseId)}/${a.action}`, { method: 'POST', body });
}

let running: Promise<void> | null = null;
const FIRST_RETRY_MS = 1000;
let backoff = FIRST_RETRY_MS;
let retryTimer: ReturnType<typeof setTimeout> | null = null;

/** A send that failed with the phone online (a cut-off, a server restarting) is tried again, 1 s doubling to 30 s. */
function retryLater(): void {
  if (retryTimer || globalThis.navigator?.onLine === false) return;
  retryTimer = setTimeout(() => { retryTimer = null; void flush(); }, backoff);
  backoff = Math.min(backoff * 2, 30_000);
}

/** Sends what waits, in the order it was tapped; one run at a time. */
export function flush(): Promise<void> {
  // Cleared in a callback, which runs after the assignment even when sendAll finishes at once.
  running ??= sendAll().finally(() => { running = null; });
  return running;
}

const nextWaiting = (): QueuedAction | undefined => queued.value.find((x) => x.status === 'waiting');

async function sendAll(): Promise<void> {
  // The oldest waiting action each time round: actions tapped while this runs are sent by it too.
  for (let a = nextWaiting(); a; a = nextWaiting()) {
    if (globalThis.navigator?.onLine === false) return;
    const cur: QueuedAction = { ...a, status: 'sending' };
    await save(cur);
    try {
      const result = await sendOne(cur);
      backoff = FIRST_RETRY_MS;
      await remove(a.actionId);
      for (const fn of sentListeners) fn(a, result);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(0, 'OFFLINE', String(err));
      // No connection, a server restarting (5xx) or a rate limit: it waits for the next chance.
      if (e.offline || e.status >= 500 || e.status === 429) {
        await save({ ...cur, status: 'waiting' });
        retryLater();
        return;
      }
      await save({ ...cur, status: 'refused', error: { status: e.status, code: e.code, message: e.message } });
    }
  }
}

const RETRY_MS = 20_000;
let loaded: Promise<void> | null = null;
/**
 * Loads what an earlier visit left and sends the signed-in user's actions; sends again whenever the
 * connection returns. Each page that works with the queue calls it (another user may have signed in).
 */
export async function startOfflineQueue(): Promise<void> {
  loaded ??= (async () => {
    globalThis.addEventListener?.('online', () => { void flush(); });
    // A connection that is up but does not reach the server fires no 'online': try again now and then.
    setInterval(() => { if (queued.value.some((a) => a.status === 'waiting')) void flush(); }, RETRY_MS);
    await load();
    // An action left "sending" by a closed page is sent again: its actionId makes that safe.
    for (const a of all.value) if (a.status === 'sending') await save({ ...a, status: 'waiting' });
  })();
  await loaded;
  await flush();
}
