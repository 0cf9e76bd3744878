/**
 * The admin endpoint's HTTP limits, apart from admin.ts so that checking a configuration does not
 * load Fastify (docs/architecture.md#broker-memory).
 */
import { checkHttpLimits, type HttpLimits } from '../lib/http-limits.ts';

export type AdminHttpLimits = Omit<HttpLimits, 'maxEventStreamsPerToken' | 'requestsPerSecond' | 'requestBurst'>;
export const DEFAULT_ADMIN_HTTP_LIMITS: AdminHttpLimits = {
  headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, idleTimeoutMs: 10_000,
  maxConnections: 256, maxConnectionsPerAddress: 32,
};

/**
 * The defaults with `limits` over them, checked as the cloud's are (lib/http-limits.ts; no event
 * stream here, so no heartbeat floor): throws CS_CONFIG_INVALID naming the keys.
 */
export function adminHttpLimits(limits: Partial<AdminHttpLimits> = {}): HttpLimits {
  const given = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
  return checkHttpLimits({ ...DEFAULT_ADMIN_HTTP_LIMITS, ...given, maxEventStreamsPerToken: 0, requestsPerSecond: 0, requestBurst: 0 }, { eventStreams: false });
}
