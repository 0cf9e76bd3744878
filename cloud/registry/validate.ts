import { Device as DeviceT, type Device } from '../../devices/district.ts';
import { profileRefProblem, unknownPointProblem, type Profile } from '../../devices/profile.ts';
import { scenarioPoint } from '../../devices/scenario.ts';
import { check } from '../../lib/schema.ts';
import type { Rows, Touched } from './store.ts';

/**
 * The registry's checks of a change, run on the registry as it would be after it (the draft): the
 * references of every device in service (profile, bus, units, district), one device per Modbus unit id
 * on a bus, and nothing retired that something in service still names. A problem names the entity,
 * its id and field; the bulk import turns these into row and column.
 */
export interface Problem { kind: 'district' | 'unit' | 'gateway' | 'bus' | 'device'; id: string; field: string; message: string }

export interface CheckDeps {
  profiles: Map<string, Profile>;
  /** Units that routing rules or the catalogue name: they cannot be retired (cloud/routing.ts, cloud/catalogue). */
  unitsInUse?: () => Map<string, string>;
}

/** A device's own shape (the District schema's Device): problems by field. */
export function shapeProblems(d: unknown, id: string): Problem[] {
  const r = check(DeviceT, d);
  if (r.ok) return [];
  return r.problems.map((p) => ({ kind: 'device' as const, id, field: p.key || 'id', message: p.message }));
}

/** The references of one device in service, against the draft. */
export function deviceProblems(d: Device, rows: Rows, deps: CheckDeps): Problem[] {
  const out: Problem[] = [];
  const p = (field: string, message: string) => out.push({ kind: 'device', id: d.id, field, message });
  const bad = profileRefProblem(deps.profiles, d.profile);
  if (bad) p('profile', bad);
  const profile = deps.profiles.get(d.profile);
  if (profile && d.scenario) {
    const missing = d.scenario.point !== undefined ? unknownPointProblem(profile, 'scenario.point', d.scenario.point) : undefined;
    if (missing) p('scenario', missing.message);
    else {
      try {
        scenarioPoint(profile, d.scenario, 'scenario');
      } catch (err) {
        p('scenario', (err as Error).message);
      }
    }
  }
  for (const k of ['ownerUnit', 'maintainerUnit'] as const) {
    const u = rows.units.get(d[k]);
    if (!u) p(k, `unknown unit "${d[k]}"`);
    else if (u.retiredAt !== null) p(k, `unit "${d[k]}" is retired`);
  }
  const b = rows.buses.get(d.bus);
  if (!b) p('bus', `unknown bus "${d.bus}"`);
  else if (b.retiredAt !== null) p('bus', `bus "${d.bus}" is retired`);
  const county = d.componentCode.slice(0, 6);
  const dist = rows.districts.get(county);
  if (!dist) p('componentCode', `county ${county} is not a registered district (${[...rows.districts.keys()].join(', ')})`);
  else if (dist.retiredAt !== null) p('componentCode', `district ${county} is retired`);
  return out;
}

/** Every problem the touched entities make in the draft (at most `max`). */
export function changeProblems(rows: Rows, touched: Touched, deps: CheckDeps, max = 50): Problem[] {
  const out: Problem[] = [];
  // A NUL character PostgreSQL cannot store (text), refused on both engines alike.
  const kinds = [['districts', 'district'], ['units', 'unit'], ['gateways', 'gateway'], ['buses', 'bus'], ['devices', 'device']] as const;
  for (const [k, kind] of kinds) {
    for (const id of touched[k]) {
      const v = (rows[k].get(id)?.value ?? {}) as Record<string, unknown>;
      for (const [field, x] of Object.entries(v)) {
        if (JSON.stringify(x ?? null).includes('\\u0000')) out.push({ kind, id, field, message: 'holds a NUL character' });
      }
      if (out.length >= max) return out;
    }
  }
  if (out.length) return out;
  const active = [...rows.devices.values()].filter((s) => s.retiredAt === null).map((s) => s.value);
  for (const id of touched.devices) {
    const s = rows.devices.get(id)!;
    if (s.retiredAt === null) out.push(...deviceProblems(s.value, rows, deps));
    if (out.length >= max) return out.slice(0, max);
  }
  // One device per Modbus unit id on a bus (a touched device is named, not the one it collides with).
  const slots = new Map<string, string>();
  const sorted = [...active].sort((a, b) => Number(touched.devices.has(a.id)) - Number(touched.devices.has(b.id)));
  for (const d of sorted) {
    const k = `${d.bus}/${d.unitId}`;
    const other = slots.get(k);
    if (other !== undefined) out.push({ kind: 'device', id: d.id, field: 'unitId', message: `unit id ${d.unitId} is already used on bus ${d.bus} by device ${other}` });
    else slots.set(k, d.id);
    if (out.length >= max) return out;
  }
  const inUse = deps.unitsInUse?.() ?? new Map<string, string>();
  for (const id of touched.units) {
    const u = rows.units.get(id)!;
    if (u.retiredAt === null) continue;
    const dev = active.find((d) => d.ownerUnit === id || d.maintainerUnit === id);
    if (dev) out.push({ kind: 'unit', id, field: 'id', message: `unit "${id}" still owns or maintains device ${dev.id}: move its devices first` });
    const by = inUse.get(id);
    if (by) out.push({ kind: 'unit', id, field: 'id', message: `unit "${id}" is named by ${by}` });
  }
  for (const id of touched.buses) {
    const b = rows.buses.get(id)!;
    if (b.retiredAt !== null) {
      const dev = active.find((d) => d.bus === id);
      if (dev) out.push({ kind: 'bus', id, field: 'id', message: `bus "${id}" still has device ${dev.id}: move or retire its devices first` });
    } else {
      const g = rows.gateways.get(b.value.gateway);
      if (!g) out.push({ kind: 'bus', id, field: 'gateway', message: `unknown gateway "${b.value.gateway}"` });
      else if (g.retiredAt !== null) out.push({ kind: 'bus', id, field: 'gateway', message: `gateway "${b.value.gateway}" is retired` });
    }
  }
  for (const id of touched.gateways) {
    if (rows.gateways.get(id)!.retiredAt === null) continue;
    const bus = [...rows.buses.values()].find((b) => b.retiredAt === null && b.value.gateway === id);
    if (bus) out.push({ kind: 'gateway', id, field: 'id', message: `gateway "${id}" still has bus ${bus.value.id}: retire its buses first` });
  }
  for (const county of touched.districts) {
    if (rows.districts.get(county)!.retiredAt === null) continue;
    const dev = active.find((d) => d.componentCode.startsWith(county));
    if (dev) out.push({ kind: 'district', id: county, field: 'county', message: `district ${county} still has device ${dev.id}` });
  }
  return out.slice(0, max);
}
