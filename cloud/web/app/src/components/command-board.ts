import { isRunning, RESPONSE_LEVELS, type CaseClass, type CityMode, type DeviceStatus, type PollMode, type ResponseLevel, type Severity } from '../../../../../lib/vocabulary.ts';

/**
 * The command board's data (cloud/emergency/routes.ts GET /api/emergency and /api/situation,
 * GET /api/cases?extensionRequested=true) and the few rules the board applies to it.
 */

/** Response levels, lowest to highest. */
export const LEVELS = RESPONSE_LEVELS;
export type Level = ResponseLevel;

export interface GatewayAcks {
  command: { mode: PollMode } | null;
  acknowledged: { gateway: string; at: string; afterMs: number }[];
  missing: { gateway: string; attempts: number; online: boolean; outcome: string | null; message: string | null }[];
  total: number;
}

export type WarningDecision =
  | { action: 'ignore'; reason: string }
  | { action: 'enter'; level: Level; signal?: string; event: string; headline?: string; expires?: string }
  | { action: 'cancel'; references: string[] };

export interface Warning {
  sender: string; identifier: string; sent: string; status: string; msgType: string; receivedAt: string;
  decision: WarningDecision; inForce: boolean;
}

export interface ModeLogEntry {
  seq: number; epoch: number; at: string; action: string; mode: CityMode; level: Level | null; actor: string; role: string; reason: string; alertId: string | null;
}

export interface EmergencyStatus {
  mode: CityMode; level: Level | null; since: string | null; actor: string; reason: string; source: string;
  alerts: string[]; epoch: number; gateways: GatewayAcks; warnings: Warning[]; log: ModeLogEntry[];
}

export interface BoardCase {
  id: string; device: string; hazard: string; severity: Severity; state: string; unit: string;
  class: CaseClass; emergencyPeriod: number | null; title: string; address: string | null; openedAt: string; deadline: string;
}

export interface BoardUnit { id: string; name: string; dutyContact: string | null; onDuty: boolean; openCases: number; overdueCases: number; emergencyCases: number }

export interface Situation {
  openEmergencyCases: BoardCase[];
  units: BoardUnit[];
  notices: { kind: string; identifier: string; sender: string; at: string; message: string }[];
}

export interface ExtensionCase {
  id: string; device: string; title: string; unit: string; state: string; deadline: string; class: CaseClass; emergencyPeriod: number | null;
  extensionRequest: { reason: string; until: string | null; at: string; by: string } | null;
}

export interface DeviceItem { id: string; name: string; location: { lat: number; lon: number }; status: DeviceStatus; tier: Severity | null }

/** Overdue running cases first (most overdue first), then the rest by deadline. */
export function byUrgency(cases: BoardCase[], now: number): (BoardCase & { overdue: boolean })[] {
  return cases
    .map((c) => ({ ...c, overdue: isRunning(c.state) && Date.parse(c.deadline) < now }))
    .sort((a, b) => Number(b.overdue) - Number(a.overdue) || Date.parse(a.deadline) - Date.parse(b.deadline));
}

/** Milliseconds the zone is ahead of UTC at `ms`. */
function zoneOffsetMs(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(ms);
  const g = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return Date.UTC(g('year'), g('month') - 1, g('day'), g('hour'), g('minute'), g('second')) - Math.floor(ms / 1000) * 1000;
}

/** An instant as a datetime-local input's value in the city's zone (the wall's own zone may differ). */
export function toZoneInput(iso: string, zone: string): string {
  const ms = Date.parse(iso);
  return new Date(ms + zoneOffsetMs(ms, zone)).toISOString().slice(0, 16);
}

/** A datetime-local value read in the city's zone, as an ISO instant (null when empty or invalid). */
export function fromZoneInput(value: string, zone: string): string | null {
  // Only the input's own shape: Date.parse reads odd strings leniently (":00Z" alone is a date in V8).
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(value)) return null;
  const guess = Date.parse(`${value}:00Z`);
  if (!Number.isFinite(guess)) return null;
  return new Date(guess - zoneOffsetMs(guess, zone)).toISOString();
}
