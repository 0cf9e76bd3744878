import { ref } from 'vue';
import { currentLocale, i18n } from './i18n';

/**
 * Times are shown in the city's zone (GET /api/web/config `timeZone`, Asia/Shanghai by default),
 * whatever zone the phone or wall screen is set to.
 */
export const cityZone = ref('Asia/Shanghai');

/** A clock that ticks once a second for countdowns; one timer for the whole page. */
export const nowMs = ref(Date.now());
setInterval(() => { nowMs.value = Date.now(); }, 1000);

export function formatTime(iso: string | number | null | undefined, opts: { date?: boolean; seconds?: boolean } = {}): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return new Intl.DateTimeFormat(currentLocale(), {
    timeZone: cityZone.value, hour12: false,
    ...(opts.date === false ? {} : { year: 'numeric', month: '2-digit', day: '2-digit' }),
    hour: '2-digit', minute: '2-digit', ...(opts.seconds ? { second: '2-digit' } : {}),
  }).format(d);
}

/** Milliseconds to a deadline (negative when overdue). */
export function msUntil(iso: string | null | undefined, now = nowMs.value): number {
  return iso ? Date.parse(iso) - now : Number.POSITIVE_INFINITY;
}

/** "3 h 05 min" / "42 min 10 s": the magnitude of a duration, the sign is the caller's to say. */
export function formatDuration(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const t = i18n.global.t as (key: string, args: Record<string, unknown>) => string;
  if (d > 0) return t('common.duration.dh', { d, h });
  if (h > 0) return t('common.duration.hm', { h, m: String(m).padStart(2, '0') });
  return t('common.duration.ms', { m, s: String(s % 60).padStart(2, '0') });
}
