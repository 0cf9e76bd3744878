import type { EngValue } from '../devices/codec.ts';
import type { DeviceReading } from './poller.ts';

/**
 * Report by exception (docs/domain.md#sensors): a reading is published when a numeric point moved at
 * least its deadband since it was last reported, a flag or text changed, a point appeared or went,
 * the quality changed, it was asked for (`forced`), or the device's heartbeat is due. In `poll`
 * mode every reading is published. Pure: the caller passes the clock.
 */
export interface ReportPolicy {
  mode: 'poll' | 'exception';
  heartbeatMs: number;
  /** Deadband of a point; absent points use `defaultDeadband`. */
  deadbands: Record<string, number>;
  defaultDeadband: number;
}

interface Last { values: Record<string, EngValue>; quality: string; at: number }

export function createReporter() {
  const last = new Map<string, Last>();
  return {
    /** Whether to publish `r` now; when true the reading becomes the device's last reported one. */
    decide(r: DeviceReading, policy: ReportPolicy, now: number): boolean {
      const prev = last.get(r.device);
      const report = policy.mode === 'poll' || r.forced === true || !prev || prev.quality !== r.quality
        || now - prev.at >= policy.heartbeatMs || changed(prev.values, r.values, policy);
      if (report) last.set(r.device, { values: { ...r.values }, quality: r.quality, at: now });
      return report;
    },
  };
}

function changed(a: Record<string, EngValue>, b: Record<string, EngValue>, policy: ReportPolicy): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === undefined || y === undefined) return true;
    if (typeof x === 'number' && typeof y === 'number') {
      const band = policy.deadbands[k] ?? policy.defaultDeadband;
      if (band > 0 ? Math.abs(y - x) >= band : y !== x) return true;
    } else if (x !== y) {
      return true;
    }
  }
  return false;
}
