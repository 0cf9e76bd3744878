/** The MQTT identities every benchmark uses, the same on both brokers. */
import { createHash } from 'node:crypto';

export interface Account {
  username: string;
  password: string;
}

/** Gateway identities gw-0 .. gw-(n-1); each may publish only on cs/v1/gw-N/up/+. */
export const GATEWAY_COUNT = 100;
/** The cloud-side subscriber (role service: may subscribe to cs/v1/#). */
export const SERVICE = 'svc-bench';

export const gatewayName = (i: number): string => `gw-${i}`;

/**
 * Deterministic secrets, so broker and client processes agree without passing secrets around; shaped
 * like generated ones (43 base64url characters), so our store keeps them as production does (SHA-256).
 */
export function account(username: string): Account {
  return { username, password: `Bench0${createHash('sha256').update(`bench-${username}`).digest('base64url').slice(0, 37)}` };
}

export const upTopic = (gateway: string, device = 'dev'): string => `cs/v1/${gateway}/up/${device}`;
export const ALL_UP = 'cs/v1/+/up/+';
