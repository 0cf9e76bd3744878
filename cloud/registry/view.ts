import type { Bus, Device, District } from '../../devices/district.ts';

/**
 * The live District view (docs/architecture.md#device-registry): one object for the whole cloud whose
 * arrays the registry replaces, never edits, on each change (copy on write, in one synchronous step,
 * so a reader sees the old registry or the new one, never half of each). What a consumer derives
 * from `district.devices` (a Map by id...) it derives through `derive`, which recomputes when the
 * array is a new one: built once per change, not per reading.
 */

/** Memoised on the identity of what `key` returns: `fn` runs again only when that changed. */
export function derive<K extends object, V>(key: () => K, fn: (k: K) => V): () => V {
  let last: K | undefined;
  let value!: V;
  return () => {
    const k = key();
    if (k !== last) {
      value = fn(k);
      last = k;
    }
    return value;
  };
}

export interface DistrictIndex {
  device: Map<string, Device>;
  bus: Map<string, Bus>;
  /** A device's gateway (through its bus). */
  gatewayOf: Map<string, string>;
}

const indexes = new WeakMap<Device[], { buses: Bus[]; index: DistrictIndex }>();

/** The view's indexes, built once per registry change and shared by every consumer. */
export function indexOf(d: District): DistrictIndex {
  const hit = indexes.get(d.devices);
  if (hit && hit.buses === d.buses) return hit.index;
  const bus = new Map(d.buses.map((b) => [b.id, b]));
  const device = new Map<string, Device>();
  const gatewayOf = new Map<string, string>();
  for (const dev of d.devices) {
    device.set(dev.id, dev);
    const b = bus.get(dev.bus);
    if (b) gatewayOf.set(dev.id, b.gateway);
  }
  const index = { device, bus, gatewayOf };
  indexes.set(d.devices, { buses: d.buses, index });
  return index;
}

/** A copy of a district whose arrays the registry may replace (the caller's object is never changed). */
export function liveCopy(d: District): District {
  return { name: d.name, county: d.county, units: [...d.units], gateways: [...d.gateways], buses: [...d.buses], devices: [...d.devices] };
}

/** The parts of a registry the view shows: the entities in service. */
export interface Snapshot {
  name: string;
  county: string;
  units: District['units'];
  gateways: District['gateways'];
  buses: District['buses'];
  devices: District['devices'];
}

/** Puts a snapshot into the live view in one synchronous step. */
export function swap(view: District, s: Snapshot): void {
  view.name = s.name;
  view.county = s.county;
  view.units = s.units;
  view.gateways = s.gateways;
  view.buses = s.buses;
  view.devices = s.devices;
}

/** Gateways whose buses or devices differ between two views (for `onChange`). */
export function changedGateways(before: Snapshot, after: Snapshot): string[] {
  const sig = (s: Snapshot) => {
    const busGw = new Map(s.buses.map((b) => [b.id, b.gateway]));
    const m = new Map<string, string[]>();
    const add = (gw: string | undefined, part: string) => {
      if (gw === undefined) return;
      let l = m.get(gw);
      if (!l) m.set(gw, (l = []));
      l.push(part);
    };
    for (const g of s.gateways) add(g.id, `g:${g.name}`);
    for (const b of s.buses) add(b.gateway, `b:${JSON.stringify(b)}`);
    for (const d of s.devices) add(busGw.get(d.bus), `d:${JSON.stringify(d)}`);
    return new Map([...m].map(([k, v]) => [k, v.sort().join('\n')]));
  };
  const a = sig(before);
  const b = sig(after);
  const out = new Set<string>();
  for (const [k, v] of a) if (b.get(k) !== v) out.add(k);
  for (const [k, v] of b) if (a.get(k) !== v) out.add(k);
  return [...out].sort();
}
