import type { Device } from '../../devices/district.ts';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { parseCsv, writeCsvRows } from './csv.ts';
import { canonicalDevice } from './store.ts';
import type { Problem } from './validate.ts';
import { shapeProblems } from './validate.ts';

/**
 * Bulk import and export of devices (README "Device registry"): CSV with one column per field, and GeoJSON
 * (a FeatureCollection of Point features, [lon, lat], the other fields as properties). An import is read
 * and checked whole before anything is applied; a refusal names the row (CSV line or feature number), the
 * column (or property) and the problem.
 */

export const CSV_COLUMNS = ['id', 'name', 'profile', 'componentCode', 'lat', 'lon', 'address', 'grid', 'ownerUnit', 'maintainerUnit', 'gateway', 'bus', 'unitId', 'pollMs', 'scenario'] as const;
const REQUIRED = ['id', 'name', 'profile', 'componentCode', 'lat', 'lon', 'ownerUnit', 'maintainerUnit', 'bus', 'unitId'];

/** A device read from a file, with where it was and the gateway the file says (checked against its bus). */
export interface ImportRow { where: string; device: Device; gateway?: string }

export interface ImportProblem { where: string; column: string; message: string }

export function importError(problems: ImportProblem[]): CsError {
  const text = problems.slice(0, 10).map((p) => `${p.where}, column ${p.column}: ${p.message}`).join('; ');
  return new CsError(CloudErrors.REGISTRY_IMPORT_INVALID, `import refused, nothing applied: ${text}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`, { problems: problems.slice(0, 100) });
}

const num = (v: string): number | string => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

export function readCsv(text: string): ImportRow[] {
  const parsed = parseCsv(text);
  if (!Array.isArray(parsed)) {
    // The column by the header's name where the header was read and the problem is in a row below it.
    const column = (parsed.line > (parsed.rows[0]?.line ?? parsed.line) && parsed.field !== undefined && parsed.rows[0].fields[parsed.field]?.trim()) || '-';
    throw importError([{ where: `line ${parsed.line}`, column, message: parsed.error }]);
  }
  if (!parsed.length) throw importError([{ where: 'line 1', column: '-', message: 'the file is empty: a header row is needed' }]);
  const header = parsed[0].fields.map((h) => h.trim());
  const problems: ImportProblem[] = [];
  for (const h of header) if (!(CSV_COLUMNS as readonly string[]).includes(h)) problems.push({ where: 'line 1', column: h, message: `unknown column (columns: ${CSV_COLUMNS.join(', ')})` });
  for (const r of REQUIRED) if (!header.includes(r)) problems.push({ where: 'line 1', column: r, message: 'required column missing' });
  if (problems.length) throw importError(problems);
  const rows: ImportRow[] = [];
  for (const { line, fields } of parsed.slice(1)) {
    const where = `line ${line}`;
    if (fields.length !== header.length) {
      problems.push({ where, column: '-', message: `${fields.length} fields, the header has ${header.length}` });
      continue;
    }
    const raw: Record<string, unknown> = {};
    let gateway: string | undefined;
    header.forEach((h, i) => {
      const v = fields[i];
      if (v === '') return;
      if (h === 'gateway') gateway = v;
      else if (h === 'lat' || h === 'lon' || h === 'unitId' || h === 'pollMs') raw[h] = num(v);
      else if (h === 'scenario') {
        try {
          raw[h] = JSON.parse(v);
        } catch {
          problems.push({ where, column: h, message: 'not JSON' });
        }
      } else raw[h] = v;
    });
    rows.push({ where, device: raw as unknown as Device, gateway });
  }
  if (problems.length) throw importError(problems);
  return rows;
}

export function readGeoJson(body: unknown): ImportRow[] {
  const fc = body as { type?: unknown; features?: unknown };
  if (!fc || typeof fc !== 'object' || fc.type !== 'FeatureCollection' || !Array.isArray(fc.features)) {
    throw importError([{ where: 'the file', column: 'type', message: 'expected a GeoJSON FeatureCollection with features' }]);
  }
  const problems: ImportProblem[] = [];
  const rows: ImportRow[] = [];
  fc.features.forEach((f: any, i: number) => {
    const where = `feature ${i + 1}`;
    const coords = f?.geometry?.coordinates;
    if (f?.type !== 'Feature' || f?.geometry?.type !== 'Point' || !Array.isArray(coords) || coords.length < 2) {
      problems.push({ where, column: 'geometry', message: 'expected a Feature with a Point geometry [lon, lat]' });
      return;
    }
    const props = f.properties && typeof f.properties === 'object' ? { ...f.properties } : {};
    for (const k of Object.keys(props)) {
      if (!(CSV_COLUMNS as readonly string[]).includes(k) || k === 'lat' || k === 'lon') problems.push({ where, column: k, message: `unknown property (properties: ${CSV_COLUMNS.filter((c) => c !== 'lat' && c !== 'lon').join(', ')})` });
    }
    const { gateway, ...rest } = props as Record<string, unknown>;
    for (const k of Object.keys(rest)) if (rest[k] === null) delete rest[k];
    rows.push({ where, device: { ...rest, lon: coords[0], lat: coords[1] } as unknown as Device, gateway: typeof gateway === 'string' ? gateway : undefined });
  });
  if (problems.length) throw importError(problems);
  return rows;
}

/** The rows' own checks: shape, duplicate ids, and the gateway column against the bus's gateway. */
export function rowProblems(rows: ImportRow[], gatewayOfBus: (bus: string) => string | undefined): ImportProblem[] {
  const problems: ImportProblem[] = [];
  const seen = new Map<string, string>();
  for (const r of rows) {
    for (const p of shapeProblems(r.device, String(r.device.id))) {
      problems.push({ where: r.where, column: p.field.split(/[.[]/)[0] || 'id', message: p.message });
    }
    const id = String(r.device.id);
    const first = seen.get(id);
    if (first) problems.push({ where: r.where, column: 'id', message: `device "${id}" is also at ${first}` });
    else seen.set(id, r.where);
    if (r.gateway !== undefined) {
      const gw = gatewayOfBus(String(r.device.bus));
      if (gw !== undefined && gw !== r.gateway) problems.push({ where: r.where, column: 'gateway', message: `bus ${r.device.bus} is on gateway ${gw}, not ${r.gateway}` });
    }
    if (problems.length >= 100) break;
  }
  return problems;
}

/** The registry's problems of a device (cloud/registry/validate.ts) at the row that holds it. */
export function atRows(rows: ImportRow[], problems: Problem[]): ImportProblem[] {
  const where = new Map(rows.map((r) => [r.device.id, r.where]));
  return problems.map((p) => ({ where: (p.kind === 'device' && where.get(p.id)) || `${p.kind} ${p.id}`, column: p.field, message: p.message }));
}

export interface ExportDevice { device: Device; gateway: string }

export function writeCsv(items: Iterable<ExportDevice>): string {
  const rows: (string | number | undefined)[][] = [[...CSV_COLUMNS]];
  for (const { device: d, gateway } of items) {
    rows.push([d.id, d.name, d.profile, d.componentCode, d.lat, d.lon, d.address, d.grid, d.ownerUnit, d.maintainerUnit, gateway, d.bus, d.unitId, d.pollMs, d.scenario && JSON.stringify(d.scenario)]);
  }
  return writeCsvRows(rows);
}

export function writeGeoJson(items: Iterable<ExportDevice>): string {
  const parts: string[] = [];
  for (const { device, gateway } of items) {
    const { lat, lon, ...props } = canonicalDevice(device);
    parts.push(JSON.stringify({ type: 'Feature', id: device.id, geometry: { type: 'Point', coordinates: [lon, lat] }, properties: { ...props, gateway } }));
  }
  return `{"type":"FeatureCollection","features":[\n${parts.join(',\n')}\n]}\n`;
}

/** The devices of the rows in the registry's key order (what the registry stores). */
export const devicesOf = (rows: ImportRow[]): Device[] => rows.map((r) => canonicalDevice(r.device));
