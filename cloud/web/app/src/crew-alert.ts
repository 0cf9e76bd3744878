import { ref } from 'vue';

/**
 * How a new dispatched case makes itself seen on the crew's phone beyond the page's own alert: a
 * short tone (Web Audio, no media file) and the browser's notification while the page is open.
 * Browsers allow sound only after a user gesture and notifications only after the user agrees,
 * so both are switched on from a button, never on load.
 */

let audio: AudioContext | null = null;

/** Notification permission as the page knows it ('unsupported' where the browser has none). */
export const notifyPermission = ref<NotificationPermission | 'unsupported'>(
  typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
);
/** Sound is on once a gesture unlocked the audio context. */
export const soundOn = ref(false);

/** Call from a click: unlocks the sound and asks for notification permission. */
export async function enableAlerts(): Promise<void> {
  unlockSound();
  if (typeof Notification !== 'undefined' && Notification.permission === 'default') {
    notifyPermission.value = await Notification.requestPermission();
  }
}

/** Any tap on the page unlocks the sound (the browser's autoplay rule); the first one is enough. */
export function unlockSound(): void {
  const Ctx = globalThis.AudioContext ?? (globalThis as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!Ctx) return;
  audio ??= new Ctx();
  void audio.resume().then(() => { soundOn.value = audio?.state === 'running'; }).catch(() => undefined);
}

/** Two short rising beeps (about half a second). */
export function beep(): void {
  if (!audio || audio.state !== 'running') return;
  const t0 = audio.currentTime;
  for (const [i, freq] of [880, 1175].entries()) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    const start = t0 + i * 0.25;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(start);
    osc.stop(start + 0.22);
  }
}

/** The browser's notification, when allowed; a click brings the page to the case. */
export function notify(title: string, body: string, onClick: () => void): void {
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body, tag: 'citysteward-case' });
    n.onclick = () => { globalThis.focus?.(); onClick(); n.close(); };
  } catch { /* some phones allow notifications only from a service worker: the page's alert remains */ }
}
