import type { Selectable } from 'kysely';
import type { CaseHistoryTable } from '../db/schema.ts';
import type { Source } from './schemas.ts';
import { SOURCES } from './schemas.ts';

/**
 * One case's facts as its history stood at a period's end (docs/evaluation.md#facts): a walk over its
 * history rows (at < end, in seq order). Facts a case's older rows do not record (history before the
 * register row carried them) are taken from the case row, and the case is named in the report.
 */

/** The history row fields read (the table's own types, cloud/db/schema.ts). */
export type FactRow = Pick<Selectable<CaseHistoryTable>, 'seq' | 'at' | 'action' | 'actor' | 'role' | 'from_state' | 'to_state' | 'details' | 'hash'>;

/** The case row fields used only where history is silent (columns of later migrations may be absent). */
export interface CaseRecord {
  id: string;
  unit: string;
  deadline_at: number;
  opened_at: number;
  emergency_epoch: number | null;
  component_code: string;
  history_head: string | null;
  source?: string | null;
  district?: string | null;
  reporter?: string | null;
  self_corrected?: number | null;
}

export interface CaseFacts {
  id: string;
  registeredAt: number;
  /** The unit last dispatched to (or registered for). */
  unit: string;
  district: string | null;
  source: Source;
  /** Who registered a person's case (`user:NAME`); null for the system (sensor cases). */
  reporter: string | null;
  selfCorrected: boolean;
  emergencyEpoch: number | null;
  state: string;
  /** The deadline in force at closing, or at the period end when open. */
  deadline: number;
  closedAt: number | null;
  /** When it was voided (voided cases count in no figure; they are listed). */
  voidedAt: number | null;
  deferred: boolean;
  firstDispatchAt: number | null;
  reworks: number;
  extensions: number;
  /** Verifications (verify or rework) by actor, with their times. */
  checks: { actor: string; at: number }[];
  /** The hash of the last row read: the chain head the facts were read from. */
  head: string | null;
  currentHead: string | null;
  /** Facts taken from the case row (history silent on them). */
  fallback: string[];
}

const isSource = (s: unknown): s is Source => typeof s === 'string' && (SOURCES as readonly string[]).includes(s);
const time = (v: unknown): number | undefined => (typeof v === 'string' && Number.isFinite(Date.parse(v)) ? Date.parse(v) : undefined);

function parse(details: string | null): Record<string, any> {
  if (!details) return {};
  try {
    const d = JSON.parse(details);
    return d && typeof d === 'object' ? d : {};
  } catch {
    return {};
  }
}

/** The district (county code) of a component code: its first 6 digits. */
export function districtOfCode(code: string | null | undefined): string | null {
  return code && /^\d{6}/.test(code) ? code.slice(0, 6) : null;
}

/** The facts of one case from its rows before the period end; undefined when none (registered later). */
export function caseFacts(c: CaseRecord, rows: readonly FactRow[]): CaseFacts | undefined {
  if (!rows.length) return undefined;
  const fallback: string[] = [];
  let registeredAt: number | undefined;
  let unit: string | undefined;
  let district: string | null | undefined;
  let source: Source | undefined;
  let reporter: string | null | undefined;
  let selfCorrected: boolean | undefined;
  let epoch: number | null | undefined;
  let deadline: number | undefined;
  let state = '';
  let closedAt: number | null = null;
  let voidedAt: number | null = null;
  let deferred = false;
  let firstDispatchAt: number | null = null;
  let reworks = 0;
  let extensions = 0;
  const checks: { actor: string; at: number }[] = [];
  for (const r of rows) {
    const d = parse(r.details);
    const at = Number(r.at);
    switch (r.action) {
      case 'register':
        registeredAt = at;
        deadline = time(d.deadline) ?? deadline;
        if (typeof d.unit === 'string') unit = d.unit;
        if (typeof d.district === 'string' || d.district === null) district = d.district;
        if (isSource(d.source)) source = d.source;
        if (typeof d.reporter === 'string') reporter = d.reporter;
        else if (r.role !== 'system') reporter = r.actor;
        else if (isSource(d.source)) reporter = null;
        // A register row that records its source says self-correction when there was one.
        if (typeof d.selfCorrected === 'boolean') selfCorrected = d.selfCorrected;
        else if (isSource(d.source)) selfCorrected = false;
        if (typeof d.emergencyEpoch === 'number' || d.emergencyEpoch === null) epoch = d.emergencyEpoch;
        break;
      case 'dispatch':
        firstDispatchAt ??= at;
        if (typeof d.unit === 'string') unit = d.unit;
        break;
      case 'extend':
        extensions++;
        deadline = time(d.to) ?? deadline;
        break;
      case 'update':
        deadline = time(d.deadline) ?? deadline;
        break;
      case 'emergency':
        deadline = time(d.deadline?.to) ?? deadline;
        if (typeof d.epoch === 'number' && epoch == null) epoch = d.epoch;
        break;
      case 'reopen':
        deadline = time(d.deadline) ?? deadline;
        if (d.rework === true || r.from_state === 'closed') reworks++;
        if (typeof d.emergencyEpoch === 'number') epoch = d.emergencyEpoch;
        break;
      case 'rework':
        reworks++;
        checks.push({ actor: r.actor, at });
        break;
      case 'verify':
        checks.push({ actor: r.actor, at });
        break;
      case 'defer':
        deferred = true;
        break;
    }
    if (r.to_state) {
      if (r.to_state === 'closed' && r.from_state !== 'closed') closedAt = at;
      if (r.to_state !== 'closed') closedAt = null;
      if (r.to_state === 'void') voidedAt = at;
      state = r.to_state;
    }
  }
  const take = <T>(v: T | undefined, name: string, alt: T): T => {
    if (v !== undefined) return v;
    fallback.push(name);
    return alt;
  };
  return {
    id: c.id,
    registeredAt: take(registeredAt, 'registeredAt', Number(c.opened_at)),
    unit: take(unit, 'unit', c.unit),
    district: take(district, 'district', c.district ?? districtOfCode(c.component_code)),
    source: take(source, 'source', isSource(c.source) ? c.source : 'sensor'),
    reporter: take(reporter, 'reporter', c.reporter ?? null),
    selfCorrected: take(selfCorrected, 'selfCorrected', Number(c.self_corrected ?? 0) === 1),
    emergencyEpoch: take(epoch, 'emergencyEpoch', c.emergency_epoch == null ? null : Number(c.emergency_epoch)),
    state,
    deadline: take(deadline, 'deadline', Number(c.deadline_at)),
    closedAt,
    voidedAt,
    deferred,
    firstDispatchAt,
    reworks,
    extensions,
    checks,
    head: rows[rows.length - 1].hash,
    currentHead: c.history_head,
    fallback,
  };
}
