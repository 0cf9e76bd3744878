import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import type { Decision } from './policy.ts';
import type { ModeState } from './mode.ts';

/**
 * Warnings in force that have expired (CAP 1.2 section 3.2.2 `expires`) with no Update or Cancel
 * after them. The mode is not ended by this: ending an emergency response is the command's
 * decision (docs/domain.md#emergency-mode: triggers are a switch or a warning), so the commander is told (an event, the situation
 * board) and decides. Computed from the database, so every worker shows the same.
 */

export interface ExpiredWarning {
  identifier: string;
  sender: string;
  event: string;
  expiredAt: number;
}

export async function expiredWarnings(db: Kysely<DB>, s: ModeState, now: number): Promise<ExpiredWarning[]> {
  if (s.mode !== 'emergency' || s.alerts.length === 0) return [];
  const rows = await db.selectFrom('cap_alerts').select(['sender', 'identifier', 'decision'])
    .where('identifier', 'in', s.alerts).orderBy('received_at').execute();
  const out: ExpiredWarning[] = [];
  for (const r of rows) {
    const d = JSON.parse(r.decision) as Decision;
    // d.expires is the alert's LAST info block's expiry (policy.ts lastExpiry): in force until then.
    if (d.action !== 'enter' || !d.expires) continue;
    const expiredAt = Date.parse(d.expires);
    if (expiredAt <= now) out.push({ identifier: r.identifier, sender: r.sender, event: d.event, expiredAt });
  }
  return out;
}

/** The commander's line on the board and in the event. */
export function expiryMessage(w: ExpiredWarning, s: ModeState): string {
  return `warning ${w.identifier} (${w.event}) expired at ${new Date(w.expiredAt).toISOString()} with no Update or Cancel; `
    + `emergency mode level ${s.level} stays until a commander ends it (POST /api/emergency) or a new warning arrives`;
}
