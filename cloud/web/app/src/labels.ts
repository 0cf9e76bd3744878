import { i18n } from './i18n';
import { ApiError } from './api';

/**
 * Display text shared by every page: hazard and point names from the common catalogue (the raw
 * code when a new one has no name yet) and the line shown for a failed call.
 */

const g = i18n.global;

/** A hazard code's name (common.hazard.*), else the code itself. */
export function hazardName(code: string): string {
  return g.te(`common.hazard.${code}`) ? g.t(`common.hazard.${code}`) : code;
}

/** A reading point's name (common.point.*), else the given fallback (the profile's name) or the key. */
export function pointName(key: string, fallback?: string): string {
  return g.te(`common.point.${key}`) ? g.t(`common.point.${key}`) : fallback ?? key;
}

/** What to show for a failed call: "no connection" when the request never arrived, else the server's message wrapped. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError && err.offline) return g.t('common.offline');
  return g.t('common.error', { message: err instanceof Error ? err.message : String(err) });
}
