/**
 * The API roles, in a module of their own so that what only needs the
 * vocabulary (config schemas read by every command) does not load the database (docs/architecture.md#broker-memory).
 * `integrator`: a machine's token (Node-RED, `citysteward flows`): reads, notes and registers cases; no workflow step.
 */
export const ROLES = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator', 'inspector'] as const;
export type Role = (typeof ROLES)[number];
/**
 * The centre's and the units' staff: every role but the inspector (巡查员), who registers cases and
 * sees the cases it registered, not the city's alarms and live events (README "Cases from people").
 */
export const STAFF_ROLES: readonly Role[] = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator'];
