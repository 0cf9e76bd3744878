import { TRANSITIONS, ACTION_ROLES, type CaseAction } from '../../../workflow.ts';
import type { CaseClass, CaseState, CityMode, Severity } from '../../../../lib/vocabulary.ts';

/**
 * What the crew's pages read of the case API (README "The API", cloud/http/schemas.ts Case and
 * CaseDetail) and which of the workflow's actions (cloud/workflow.ts) the crew's phone offers.
 */

export type PhotoFlag = 'taken-before-case' | 'far-from-asset';
export interface Photo {
  id: string; url: string; type: string; size: number; takenAt: string | null; lat: number | null; lon: number | null;
  flags: PhotoFlag[]; uploadedAt: string; by: string;
}
export interface Milestone { name: string; due: string | null; reachedAt?: string | null }
export interface CaseJson {
  id: string; device: string; hazard: string; hazards: string[]; class: CaseClass; severity: Severity; state: CaseState;
  unit: string; title: string; description: string | null; openedAt: string; updatedAt: string; deadline: string;
  overdue: boolean; milestones: Milestone[];
  /** Under the 12-hour cap (urgent class, or registered in emergency mode): NOT "the emergency period". */
  emergency: boolean;
  /** The emergency period (mode epoch) the case was registered in; null outside emergency mode. */
  emergencyPeriod: number | null;
  lastValue: number | boolean | string | null;
  location: { lat: number; lon: number; address: string | null }; grid: string | null; componentCode: string;
  extensionRequest?: { reason: string; until: string | null; at: string; by: string } | null;
  photos?: Photo[];
}
export interface HistoryEntry {
  seq: number; at: string; action: string; actor: string; role: string; fromState: string | null; toState: string | null;
  note: string | null; reason: string | null; evidence: string[]; details: Record<string, unknown> | null;
}
/** A threshold drawn across a chart. */
export interface ChartLine { value: number; label: string; severity: string }
export interface Reading { ts: string; values: Record<string, unknown>; quality?: string }
export interface CaseDetail extends CaseJson {
  history: HistoryEntry[]; alarms: { point: string | null; raisedAt: string }[]; allowedActions: string[]; readings: Reading[];
}

/** The actions the crew's phone offers, in the order its buttons show. */
export const CREW_ACTIONS = ['accept', 'on-site', 'made-safe', 'note', 'request-extension', 'handle'] as const;
export type CrewAction = (typeof CREW_ACTIONS)[number];
/** One-tap actions (no form). */
export const TAP_ACTIONS: ReadonlySet<string> = new Set(['accept', 'on-site', 'made-safe']);
/** Actions that carry photos taken on site. */
export const PHOTO_ACTIONS: ReadonlySet<string> = new Set(['note', 'handle']);
/** Milestone actions: the milestone of the same name is reached once. */
const MILESTONES: ReadonlySet<string> = new Set(['on-site', 'made-safe']);

/** The state a case will be in once the actions waiting on the phone are sent (the workflow's transitions). */
export function predictedState(state: CaseState, queued: readonly string[]): CaseState {
  let s = state;
  for (const a of queued) {
    const to = TRANSITIONS[s]?.[a as CaseAction];
    if (to && to !== 'same' && to !== 'resume') s = to;
  }
  return s;
}

/**
 * The crew actions to offer: the server's `allowedActions` while nothing is waiting to be sent, else
 * the workflow's transitions from the predicted state; a milestone already reached (or queued) and
 * a second extension request are not offered.
 */
export function offeredActions(c: CaseDetail, user: { role: string } | null, queued: readonly string[]): CrewAction[] {
  const role = user?.role;
  if (!role) return [];
  const state = predictedState(c.state, queued);
  const legal = queued.length ? Object.keys(TRANSITIONS[state] ?? {}) : c.allowedActions;
  return CREW_ACTIONS.filter((a) => {
    if (!legal.includes(a)) return false;
    const roles = (ACTION_ROLES as Record<string, readonly string[]>)[a];
    if (roles && !roles.includes(role)) return false;
    if (MILESTONES.has(a) && (queued.includes(a) || c.milestones.some((m) => m.name === a && m.reachedAt))) return false;
    if (a === 'request-extension' && (c.extensionRequest || queued.includes(a))) return false;
    return true;
  });
}

/** Open cases first by deadline; overdue ones (deadline passed) come first, most overdue on top. */
export function byDeadline(a: CaseJson, b: CaseJson): number {
  return Date.parse(a.deadline) - Date.parse(b.deadline) || a.id.localeCompare(b.id);
}

/** An action id the server makes idempotent (8..64 of [A-Za-z0-9_-]): a resend is answered, never applied twice. */
export function newActionId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID().replace(/-/g, '');
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A navigation link the phone's map app opens (RFC 5870 geo: URI), and AMap's marker URI (links only, nothing fetched). */
export function geoLink(lat: number, lon: number): string {
  return `geo:${lat},${lon}`;
}
export function amapLink(lat: number, lon: number, name: string): string {
  return `https://uri.amap.com/marker?position=${lon},${lat}&name=${encodeURIComponent(name)}&coordinate=wgs84&callnative=1`;
}

/** The rules in force for a device (GET /api/devices/:id/thresholds), as the charts draw them. */
export interface ThresholdLine { point: string; op: string; value: number | boolean; severity: string }
export interface Thresholds { inForce: CityMode; normal: ThresholdLine[]; emergency: ThresholdLine[] }

/** The points a case's chart draws: those its alarms were about, else the first two numeric points read. */
export function chartPoints(d: Pick<CaseDetail, 'alarms' | 'readings'> | null): string[] {
  if (!d) return [];
  const fromAlarms = [...new Set(d.alarms.map((a) => a.point).filter((p): p is string => !!p))];
  if (fromAlarms.length) return fromAlarms;
  return [...new Set(d.readings.flatMap((r) => Object.keys(r.values).filter((k) => typeof r.values[k] === 'number')))].slice(0, 2);
}

/** The numeric limits in force on one point, labelled with the severity's name (`severityName`). */
export function thresholdLines(th: Thresholds | null, point: string, severityName: (s: string) => string): ChartLine[] {
  if (!th) return [];
  return th[th.inForce].filter((l) => l.point === point && typeof l.value === 'number')
    .map((l) => ({ value: l.value as number, severity: l.severity, label: `${l.op} ${l.value} (${severityName(l.severity)})` }));
}
