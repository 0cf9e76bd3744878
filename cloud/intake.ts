import { createHash } from 'node:crypto';
import type { TSchema, Static } from '@sinclair/typebox';
import { lazyChild, type Logger } from '../lib/log.ts';
import { check } from '../lib/schema.ts';
import { parseTopic } from '../lib/topics.ts';
import { createRateLimiter } from '../lib/rate-limit.ts';
import type { Device, District } from '../devices/district.ts';
import { derive, indexOf } from './registry/view.ts';
import type { Profile } from '../devices/profile.ts';
import type { AlarmChange, CaseChange, CaseEnv } from './cases/index.ts';
import type { Database } from './db/database.ts';
import type { EventBus } from './events.ts';
import type { ModeProvider } from './mode.ts';
import type { RuleEngine } from './rules.ts';

/**
 * The steps every message from a gateway takes before its own handling (readings, edge alarms;
 * docs/architecture.md, data path): topic -> size -> JSON -> schema -> device, a guard that turns
 * a check that throws into a rejection (left unacknowledged it would come back forever), warnings
 * rate-limited per gateway with a count of what was held back, and the hash a conflict logs.
 */

/** The reasons every message can be rejected for, before its own checks. */
export type IntakeRejectReason =
  | 'bad-topic' | 'topic-mismatch' | 'too-large' | 'bad-json' | 'invalid'
  | 'device-mismatch' | 'unknown-device' | 'retired-device' | 'wrong-gateway';

export class Rejection<R extends string = string> {
  constructor(readonly reason: R, readonly message: string, readonly details?: Record<string, unknown>) {}
}

export interface Registered { device: Device; gateway: string; profile: Profile }

/** Warning lines about one gateway's bad messages: at most `max` per `windowMs`, then a count. */
export interface WarnLimit { windowMs: number; max: number }
export const DEFAULT_WARN_LIMIT: WarnLimit = { windowMs: 60_000, max: 20 };

/** The counters of a message kind (readings, edge alarms), the intake's part of its stats. */
export interface IntakeCounters {
  stored: number;
  /** Redeliveries of a stored key with the same payload (at least once). */
  duplicates: number;
  /** Messages whose key was stored with a different payload (kept the first; logged at warning). */
  conflicts: number;
  rejected: Record<string, number>;
  /** Messages the database could not take (left unacknowledged for redelivery). */
  failed: number;
  /** Warning lines about the gateway's rejected or conflicting messages left out by the per-gateway log limit. */
  warningsSuppressed: number;
}

/** What ingesting one message (a reading, an edge alarm) came to. */
export type IngestOutcome<R extends string> =
  | { status: 'stored'; gateway: string; seq: number; device: string; cases: CaseChange[]; alarms: AlarmChange[] }
  | { status: 'duplicate'; gateway: string; seq: number; device: string }
  /** The key was stored before with another payload: the first is kept, this one counted and logged. */
  | { status: 'conflict'; gateway: string; stream: string; seq: number; device: string; storedHash: string; hash: string }
  | Rejected<R>
  /** The database failed; not stored, to be redelivered (not acknowledged). */
  | Failed;

/** What an ingest pipeline (readings, edge alarms) works with. */
export interface PipelineDeps {
  database: Database;
  district: District;
  profiles: Map<string, Profile>;
  env: CaseEnv;
  engine: RuleEngine;
  mode: ModeProvider;
  events: EventBus;
  now: () => number;
  logger: Logger;
  /** Rate of warnings per gateway (DEFAULT_WARN_LIMIT when omitted). */
  warnLimit?: Partial<WarnLimit>;
  /** The intake steps, shared by readings and edge alarms so one gateway's warnings share one limit (one of its own when omitted). */
  intake?: Intake;
}

export interface IntakeSpec<S extends TSchema> {
  /** Topic kind (lib/topics.ts): `up` for readings, `alarm` for edge alarms. */
  kind: 'up' | 'alarm';
  /** What the message is called in log lines and messages ("reading", "edge alarm"). */
  what: string;
  maxBytes: number;
  schema: S;
}

export type Rejected<R extends string> = { status: 'rejected'; reason: R; message: string };
export type Failed = { status: 'failed'; reason: 'store-failed'; message: string };

export interface Intake {
  /** Topic, size, JSON, schema and device of one message; throws a Rejection. */
  decode<S extends TSchema>(spec: IntakeSpec<S>, gateway: string, topic: string, payload: Buffer): { reg: Registered; body: Static<S> & { device: string } };
  /** Runs one message's handling: a Rejection, or a throw before `checked()`, rejects it; a later throw fails it. */
  guard<T, R extends string>(spec: { what: string }, gateway: string, topic: string, counters: IntakeCounters,
    handle: (ctx: { log: Logger; checked(): void }) => Promise<T>): Promise<T | Rejected<R> | Failed>;
  /** A warning (or error) about one gateway's messages, within its limit (counted when held back). */
  warn(gateway: string, counters: IntakeCounters, log: Logger, obj: object, msg: string, level?: 'warn' | 'error'): void;
  /** Logs what the warning limit still holds back. */
  close(): void;
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** A short hash of a payload's canonical JSON (key order ignored), logged with a conflict. */
export function payloadHash(v: unknown): string {
  return createHash('sha256').update(canonical(v)).digest('hex').slice(0, 16);
}

/** Refusals the registry of another worker may have made wrong a moment ago: judged again after a recheck. */
const RECHECKED = new Set(['unknown-device', 'retired-device', 'wrong-gateway']);

export function createIntake(deps: {
  district: District; profiles: Map<string, Profile>; logger: Logger; warnLimit?: Partial<WarnLimit>;
  /** A retired device of the registry (its readings are refused as `retired-device`). */
  retired?: (device: string) => unknown;
  /**
   * Brings the registry up to the database's version (cloud/registry/recheck.ts): a message refused as
   * unknown-device, retired-device or wrong-gateway is judged again after it (another worker's change).
   */
  recheck?: () => Promise<void>;
}): Intake {
  const { logger } = deps;
  // The live registry's devices (cloud/registry/view.ts): rebuilt once after each registry change.
  const registry = derive(() => deps.district.devices, () => {
    const m = new Map<string, Registered>();
    const index = indexOf(deps.district);
    for (const device of deps.district.devices) {
      const profile = deps.profiles.get(device.profile);
      const gateway = index.gatewayOf.get(device.id);
      if (profile && gateway) m.set(device.id, { device, gateway, profile });
    }
    return m;
  });
  const warnings = createRateLimiter({
    ...DEFAULT_WARN_LIMIT, ...deps.warnLimit,
    onSuppressed: (gateway, suppressed, windowMs) => {
      logger.warn({ gateway, suppressed, windowMs }, `${suppressed} more warnings about gateway ${gateway}'s messages suppressed in ${windowMs / 1000} s`);
    },
  });

  function decode<S extends TSchema>(spec: IntakeSpec<S>, gateway: string, topic: string, payload: Buffer) {
    const t = parseTopic(topic);
    if (!t || t.kind !== spec.kind || !t.device) throw new Rejection('bad-topic', `not ${spec.what === 'edge alarm' ? 'an' : 'a'} ${spec.what} topic: ${topic}`);
    if (t.gateway !== gateway) throw new Rejection('topic-mismatch', `topic ${topic} is outside gateway ${gateway}'s namespace`);
    if (payload.length > spec.maxBytes) throw new Rejection('too-large', `payload of ${payload.length} bytes exceeds ${spec.maxBytes}`);
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      throw new Rejection('bad-json', `payload is not JSON: ${(err as Error).message}`);
    }
    const r = check(spec.schema, json, { owned: true });
    if (!r.ok) {
      throw new Rejection('invalid', `${spec.what} invalid: ${r.problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems: r.problems });
    }
    const body = r.value as Static<S> & { device: string };
    if (body.device !== t.device) throw new Rejection('device-mismatch', `payload device "${body.device}" differs from topic device "${t.device}"`);
    const reg = registry().get(body.device);
    if (!reg && deps.retired?.(body.device)) throw new Rejection('retired-device', `device "${body.device}" is retired from the registry`);
    if (!reg) throw new Rejection('unknown-device', `device "${body.device}" is not registered in the district`);
    if (reg.gateway !== gateway) throw new Rejection('wrong-gateway', `device "${body.device}" belongs to gateway ${reg.gateway}, not ${gateway}`);
    return { reg, body };
  }

  function warn(gateway: string, counters: IntakeCounters, log: Logger, obj: object, msg: string, level: 'warn' | 'error' = 'warn'): void {
    if (warnings.allow(gateway)) log[level](obj, msg);
    else counters.warningsSuppressed++;
  }

  async function guard<T, R extends string>(spec: { what: string }, gateway: string, topic: string, counters: IntakeCounters,
    handle: (ctx: { log: Logger; checked(): void }) => Promise<T>): Promise<T | Rejected<R> | Failed> {
    const device = parseTopic(topic)?.device;
    const log = lazyChild(logger, device ? { gateway, device } : { gateway });
    let checked = false;
    try {
      try {
        return await handle({ log, checked: () => { checked = true; } });
      } catch (err) {
        if (!(err instanceof Rejection) || checked || !deps.recheck || !RECHECKED.has(err.reason)) throw err;
        await deps.recheck();
        return await handle({ log, checked: () => { checked = true; } });
      }
    } catch (err) {
      if (err instanceof Rejection) {
        counters.rejected[err.reason] = (counters.rejected[err.reason] ?? 0) + 1;
        warn(gateway, counters, log, { reason: err.reason, topic, ...err.details }, `${spec.what} rejected: ${err.message}`);
        return { status: 'rejected', reason: err.reason as R, message: err.message };
      }
      if (!checked) {
        counters.rejected.invalid = (counters.rejected.invalid ?? 0) + 1;
        warn(gateway, counters, log, { err, topic }, `${spec.what} rejected: its check failed`, 'error');
        return { status: 'rejected', reason: 'invalid' as R, message: `${spec.what} could not be checked: ${(err as Error)?.message ?? String(err)}` };
      }
      counters.failed++;
      log.error({ err, topic }, `${spec.what} could not be stored`);
      return { status: 'failed', reason: 'store-failed', message: (err as Error)?.message ?? String(err) };
    }
  }

  return { decode, guard, warn, close: () => warnings.close() };
}
