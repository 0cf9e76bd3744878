/**
 * The API roles, in a module of their own so that what only needs the
 * vocabulary (config schemas read by every command) does not load the database (docs/architecture.md#broker-memory).
 * `integrator`: a machine's token (Node-RED, `citysteward flows`): reads, notes and registers cases; no workflow step.
 */
export const ROLES = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator'] as const;
export type Role = (typeof ROLES)[number];
