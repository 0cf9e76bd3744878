import type { Selectable } from 'kysely';
import type { EmergencyLogTable } from '../db/schema.ts';
import type { LogChain } from './chain.ts';

/**
 * The emergency log's chain (docs/architecture.md#audit-chains): one chain over the whole log, since
 * it takes a few rows a day and every append already holds the one emergency_state row.
 * The hashed fields, in this order (never reorder, only add in a new version).
 */
export const EMERGENCY_LOG: LogChain<Pick<Selectable<EmergencyLogTable>, 'seq' | 'epoch' | 'at' | 'action' | 'mode' | 'level' | 'actor' | 'role' | 'reason' | 'alert_id'>> = {
  chain: 'emergency_log',
  fields: (r) => [Number(r.seq), Number(r.epoch), Number(r.at), r.action, r.mode, r.level ?? null, r.actor, r.role, r.reason, r.alert_id ?? null],
};
