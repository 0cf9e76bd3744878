import { Open311Error } from './format.ts';
import type { Contact, NewReport } from './reports.ts';

/** Form fields or JSON members as they came (strings from a form; numbers may come as numbers in JSON). */
export type FieldSource = Record<string, unknown>;

const DAY = 86_400_000;
const MAX_SPAN = 90 * DAY;
const CONTACT_FIELDS = ['email', 'phone', 'first_name', 'last_name', 'account_id', 'device_id'] as const;

function text(src: FieldSource, name: string, max: number): string | undefined {
  const v = Object.prototype.hasOwnProperty.call(src, name) ? src[name] : undefined;
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new Open311Error(400, `${name} must be text`);
  const s = String(v).trim();
  if (s.length > max) throw new Open311Error(400, `${name} is longer than ${max} characters`);
  // No control characters but line breaks and tabs (the spec: free text, no html or code).
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s)) throw new Open311Error(400, `${name} holds control characters`);
  return s || undefined;
}

function coordinate(src: FieldSource, name: string, limit: number): number | undefined {
  const s = text(src, name, 40);
  if (s === undefined) return undefined;
  const n = /^[+-]?\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(n) || Math.abs(n) > limit) throw new Open311Error(400, `${name} must be a WGS84 coordinate between -${limit} and ${limit}`);
  return n;
}

/** POST requests: the spec's fields checked; a 400 names the first field wrong. */
export function parseNewRequest(src: FieldSource): NewReport {
  const serviceCode = text(src, 'service_code', 64);
  if (!serviceCode) throw new Open311Error(400, 'service_code was not provided');
  const lat = coordinate(src, 'lat', 90);
  const lon = coordinate(src, 'long', 180);
  if ((lat === undefined) !== (lon === undefined)) throw new Open311Error(400, 'lat and long must be sent together');
  const addressString = text(src, 'address_string', 500);
  const addressId = text(src, 'address_id', 100);
  if (lat === undefined && !addressString && !addressId) throw new Open311Error(400, 'a location is required: lat and long, address_string or address_id');
  const mediaUrl = text(src, 'media_url', 2000);
  if (mediaUrl !== undefined) {
    let ok = false;
    try { ok = ['http:', 'https:'].includes(new URL(mediaUrl).protocol); } catch { /* not a URL */ }
    if (!ok) throw new Open311Error(400, 'media_url must be an http or https URL');
  }
  const contact: Contact = {};
  for (const f of CONTACT_FIELDS) {
    const v = text(src, f, 200);
    if (v !== undefined) contact[f] = v;
  }
  return { serviceCode, description: text(src, 'description', 4000) ?? '', lat, lon, addressString, addressId, mediaUrl, contact };
}

export interface RequestQuery {
  ids?: string[];
  serviceCodes?: string[];
  from: number;
  to: number;
  statuses?: ('open' | 'closed')[];
}

function list(src: FieldSource, name: string): string[] | undefined {
  const v = text(src, name, 4000);
  if (v === undefined) return undefined;
  const items = [...new Set(v.split(',').map((s) => s.trim()).filter(Boolean))];
  if (items.length > 100) throw new Open311Error(400, `${name}: at most 100 values`);
  return items.length ? items : undefined;
}

function date(src: FieldSource, name: string): number | undefined {
  const v = text(src, name, 40);
  if (v === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) throw new Open311Error(400, `${name} must be a w3 date-time with a zone, e.g. 2026-11-01T00:00:00Z`);
  return t;
}

/** GET requests: service_request_id overrides the rest; the range defaults to the 90 days before end_date. */
export function parseRequestQuery(src: FieldSource, now: number): RequestQuery {
  const ids = list(src, 'service_request_id');
  const serviceCodes = list(src, 'service_code');
  const start = date(src, 'start_date');
  const end = date(src, 'end_date');
  const to = end ?? (start !== undefined ? start + MAX_SPAN : now);
  const from = start ?? to - MAX_SPAN;
  if (!ids && from > to) throw new Open311Error(400, 'start_date is after end_date');
  if (!ids && to - from > MAX_SPAN) throw new Open311Error(400, 'start_date to end_date may not span more than 90 days');
  const st = list(src, 'status');
  if (st?.some((s) => s !== 'open' && s !== 'closed')) throw new Open311Error(400, 'status must be open, closed or open,closed');
  return { ids, serviceCodes, from, to, statuses: st as ('open' | 'closed')[] | undefined };
}
