import type { Selectable } from 'kysely';
import type { CaseClass, CaseSource, Severity, Static } from '../../lib/vocabulary.ts';
import type { AlarmsTable, CasesTable } from '../db/schema.ts';
import type { Alarm, Case, HistoryEntry } from '../http/schemas.ts';
import { isOverdue, type CaseState } from '../workflow.ts';
import type { HistoryRow } from './history.ts';
import type { PhotoJson } from '../photos/json.ts';
import { parseExtensionRequest, parseMilestones } from './work.ts';
import type { VerificationJson } from './verification.ts';

/** Database rows to the API's JSON (the shapes are the TypeBox schemas of cloud/http/schemas.ts). */

export type CaseRow = Selectable<CasesTable>;
export type AlarmRow = Selectable<AlarmsTable>;
export type CaseJson = Static<typeof Case>;
export type HistoryJson = Static<typeof HistoryEntry>;
export type AlarmJson = Static<typeof Alarm>;

export function iso(ms: number | string): string {
  return new Date(Number(ms)).toISOString();
}

/** What the case's row alone does not hold: its photos, and for a handled case the sensor check (cloud/cases/extras.ts). */
export interface CaseExtras {
  photos: PhotoJson[];
  verification?: VerificationJson;
}

export function caseToJson(r: CaseRow, now?: number, extras: CaseExtras = { photos: [] }): CaseJson {
  const ext = parseExtensionRequest(r.extension_request ?? null);
  return {
    id: r.id,
    device: r.device,
    hazard: r.hazard,
    hazards: parseList(r.hazards ?? '[]'),
    class: r.class as CaseClass,
    severity: r.severity as Severity,
    state: r.state as CaseState,
    unit: r.unit,
    title: r.title,
    description: r.description,
    openedAt: iso(r.opened_at),
    updatedAt: iso(r.updated_at),
    deadline: iso(r.deadline_at),
    handledAt: r.handled_at == null ? null : iso(r.handled_at),
    overdue: now !== undefined && isOverdue(r.state, Number(r.deadline_at), now),
    milestones: parseMilestones(r.milestones).map((m) => ({ name: m.name, due: m.due == null ? null : iso(m.due), reachedAt: m.reachedAt == null ? null : iso(m.reachedAt) })),
    emergency: Number(r.emergency) === 1,
    emergencyPeriod: r.emergency_epoch == null ? null : Number(r.emergency_epoch),
    breachCount: Number(r.breach_count),
    reworkCount: Number(r.rework_count ?? 0),
    extensionCount: Number(r.extension_count ?? 0),
    escalationLevel: Number(r.escalation_level ?? 0),
    lastValue: parseJson(r.last_value),
    location: { lat: Number(r.lat), lon: Number(r.lon), address: r.address },
    grid: r.grid ?? null,
    componentCode: r.component_code,
    extensionRequest: ext && { reason: ext.reason, until: ext.until === null ? null : iso(ext.until), at: iso(ext.at), by: ext.by },
    source: (r.source ?? 'sensor') as CaseSource,
    category: r.category ?? null,
    reporter: r.reporter ?? null,
    selfCorrected: Number(r.self_corrected ?? 0) === 1,
    district: r.district ?? null,
    photos: extras.photos,
    ...(extras.verification ? { verification: extras.verification } : {}),
  };
}

export function historyToJson(h: HistoryRow): HistoryJson {
  return {
    seq: Number(h.seq), at: iso(h.at), action: h.action, actor: h.actor, role: h.role, fromState: h.from_state, toState: h.to_state,
    note: h.note, reason: h.reason ?? null, evidence: h.evidence ? (JSON.parse(h.evidence) as string[]) : [],
    details: h.details ? (JSON.parse(h.details) as Record<string, unknown>) : null,
  };
}

export function alarmToJson(a: AlarmRow): AlarmJson {
  return {
    id: a.id, device: a.device, hazard: a.hazard, rule: a.rule_id, severity: a.severity, class: a.class, point: a.point,
    value: a.value === null ? null : parseJson(a.value), raisedAt: iso(a.raised_at), clearedAt: a.cleared_at === null ? null : iso(a.cleared_at),
    acknowledgedAt: a.acked_at === null ? null : iso(a.acked_at), acknowledgedBy: a.acked_by, caseId: a.case_id,
    active: a.cleared_at === null, origin: a.origin === 'edge' ? 'edge' : 'cloud',
  };
}

/** A JSON list column (hazards, milestones); anything else is an empty list. */
export function parseList(text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? v.map(String) : [];
  } catch {
    return [];
  }
}

function parseJson(text: string): number | boolean | string | null {
  try {
    return JSON.parse(text) as number | boolean | string;
  } catch {
    return null;
  }
}
