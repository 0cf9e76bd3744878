import type { WarningPolicy } from './policy.ts';

/** The cloud's `emergency` option (cloud/app.ts CloudOptions). */
export interface EmergencyConfig {
  /** How CAP warnings map to the mode (WarningPolicy; defaults: Zhuhai, typhoon signals). */
  policy?: Partial<WarningPolicy>;
  /** What gateways switch to: poll and heartbeat intervals (default poll DEFAULT_FAST_POLL_MS). */
  fast?: { pollMs: number; heartbeatMs?: number };
  /** Retry period of unacknowledged mode commands (default 3 s). */
  retryMs?: number;
  /** Pull open hazard cases in to the 12-hour cap when the mode starts (default true). */
  tightenOpenCases?: boolean;
  /** How often a worker re-reads a mode another worker may have switched, ms (default 2000). */
  syncMs?: number;
}
