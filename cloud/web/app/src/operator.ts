import { api, post } from './api';
import type { DeviceStatus, Severity } from '../../../../lib/vocabulary.ts';

/**
 * What the operator's pages read from the API (README "Devices for the operator"): the device list,
 * gateways, alarms and the point catalogue (names and units per profile, GET /web/points.json).
 */

export interface DeviceItem {
  id: string;
  name: string;
  profile: string;
  kind: string;
  componentCode: string;
  location: { lat: number; lon: number; address: string | null };
  ownerUnit: string;
  maintainerUnit: string;
  gateway: string;
  district: string;
  status: DeviceStatus;
  tier: Severity | null;
  link: string;
  lastSeen: string | null;
  latest: { seq: number; ts: string; values: Record<string, unknown>; quality: string } | null;
  openCases: number;
}

export interface Gateway { id: string; name: string; online: boolean; lastSeen: string | null; mode: string | null; outboxDepth: number | null; devices: number }

export interface Alarm {
  id: string; device: string; hazard: string; rule: string; severity: Severity; class: string; point: string | null;
  value: unknown; raisedAt: string; clearedAt: string | null; acknowledgedAt: string | null; acknowledgedBy: string | null;
  caseId: string | null; active: boolean; origin: 'cloud' | 'edge';
}

export interface PointInfo { key: string; name: string; unit: string }
type Catalogue = { profiles: Record<string, { kind: string; points: PointInfo[] }> };

let catalogue: Promise<Catalogue> | null = null;
/** Point names and units per profile, fetched once per page load. */
export function pointCatalogue(): Promise<Catalogue> {
  catalogue ??= api<Catalogue>('/web/points.json').catch((e) => { catalogue = null; throw e; });
  return catalogue;
}

/** Active alarms first, then newest first. */
export function alarmOrder(a: Alarm, b: Alarm): number {
  if (a.active !== b.active) return a.active ? -1 : 1;
  return Date.parse(b.raisedAt) - Date.parse(a.raisedAt);
}

/** A reading's value for people: numbers trimmed, booleans as words by the caller. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
  if (v === null || v === undefined) return '—';
  return String(v);
}

export const devicePath = (id: string): string => `/operator/devices/${encodeURIComponent(id)}`;

/** Acknowledges an alarm (POST /api/alarms/:id/ack) and gives back the list with the acknowledged alarm in its place. */
export async function acknowledge(alarms: Alarm[], id: string): Promise<Alarm[]> {
  const a = await post<Alarm>(`/api/alarms/${encodeURIComponent(id)}/ack`);
  return alarms.map((x) => (x.id === a.id ? a : x));
}
