import { sql } from 'kysely';
import type { Bus, Device, District } from '../../devices/district.ts';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import type { Database } from '../db/database.ts';
import { CloudErrors } from '../errors.ts';
import { emptyRows, loadRows, noneTouched, readVersion, writeChange, type Rows, type Stamped, type Touched } from './store.ts';
import { appendRegistryLog, entriesOf, type RegistryAudit } from './log.ts';
import { changeProblems, type CheckDeps, type Problem } from './validate.ts';
import { changedGateways, liveCopy, swap, type Snapshot } from './view.ts';

/**
 * The live device registry (docs/architecture.md#device-registry): loads the registry from the database at
 * start (filling it from the district YAML, the seed, with what it does not hold yet), holds the District
 * view every consumer of the cloud reads, applies changes (checked on a draft, written in one transaction,
 * then the view swapped in one step) and tells listeners which gateways changed. Another worker's change is
 * seen through the cloud's version poll (cloud/version-poll.ts, every `pollMs`): `onVersion`.
 */

/** Told after each change, local or another worker's: the gateways whose device set, devices or buses changed. */
export type RegistryListener = (change: { gateways: string[] }) => void;

/** A device out of service: what it was, on which gateway, since when. */
export interface RetiredDevice { device: Device; gateway: string; retiredAt: number }

/** One gateway as its edge needs it: its buses and the devices on them (in service). */
export interface GatewayConfig { gateway: { id: string; name: string }; buses: Bus[]; devices: Device[] }

/** A change: edits the draft (a copy of every row), marking what it touched; throws a CsError to refuse. */
export type Change<T> = (draft: Rows, touch: Touched, at: number) => T;

export interface Registry {
  /** The live view: the same object for the cloud's lifetime, its arrays replaced on each change. */
  readonly district: District;
  /** Ids of the units in service (the same Set, kept current: tokens and users check against it). */
  readonly knownUnits: Set<string>;
  /** Every row, retired ones too (read-only: change through `apply`). */
  rows(): Rows;
  version(): number;
  /** A retired device (readings refused, history readable), or undefined. */
  retired(id: string): RetiredDevice | undefined;
  /** Every retired device, in id order. */
  retiredAll(): RetiredDevice[];
  gateway(id: string): GatewayConfig | undefined;
  onChange(listener: RegistryListener): () => void;
  /** Applies a change; `audit` (who, as what) writes its entries to the registry log in the same transaction. */
  apply<T>(change: Change<T>, audit?: RegistryAudit): Promise<T>;
  /** Reloads when the database's version moved (another worker's change); true when it did. */
  refresh(): Promise<boolean>;
  /** The version the cloud's poll read: reloads when it is not this worker's. */
  onVersion(v: number): Promise<boolean>;
  start(): Promise<void>;
}

export interface RegistryDeps extends CheckDeps {
  database: Database;
  /** The seed (the district YAML): its entities the database does not hold yet are added at start. */
  seed: District;
  now: () => number;
  logger: Logger;
}

export const DEFAULT_REGISTRY_POLL_MS = 2000;

const copyRows = (r: Rows): Rows => ({
  districts: new Map(r.districts), units: new Map(r.units), gateways: new Map(r.gateways), buses: new Map(r.buses), devices: new Map(r.devices),
});

function snapshotOf(rows: Rows, seed: District): Snapshot {
  const live = <T>(m: Map<string, Stamped<T>>) => [...m.values()].filter((s) => s.retiredAt === null).map((s) => s.value);
  const home = rows.districts.get(seed.county) ?? [...rows.districts.values()][0];
  return {
    name: home?.value.name ?? seed.name, county: home?.value.county ?? seed.county,
    units: live(rows.units), gateways: live(rows.gateways), buses: live(rows.buses), devices: live(rows.devices),
  };
}

/** Adds the seed's entities the rows do not hold (never overwriting or reviving one the registry knows). */
function addSeed(draft: Rows, touch: Touched, seed: District, at: number, logger: Logger): void {
  const add = <T>(m: Map<string, Stamped<T>>, set: Set<string>, id: string, value: T) => {
    if (m.has(id)) return;
    m.set(id, { value, createdAt: at, updatedAt: at, retiredAt: null });
    set.add(id);
  };
  add(draft.districts, touch.districts, seed.county, { county: seed.county, name: seed.name });
  for (const u of seed.units) add(draft.units, touch.units, u.id, u);
  for (const g of seed.gateways) add(draft.gateways, touch.gateways, g.id, g);
  for (const b of seed.buses) add(draft.buses, touch.buses, b.id, b);
  const slots = new Set([...draft.devices.values()].filter((s) => s.retiredAt === null).map((s) => `${s.value.bus}/${s.value.unitId}`));
  for (const d of seed.devices) {
    if (draft.devices.has(d.id)) continue;
    const slot = `${d.bus}/${d.unitId}`;
    if (slots.has(slot)) {
      logger.warn({ device: d.id, slot }, 'seed device not added: its bus and unit id are taken in the registry');
      continue;
    }
    // A seed device of another county brings its district along (synthetic districts in tests).
    const county = d.componentCode.slice(0, 6);
    add(draft.districts, touch.districts, county, { county, name: county });
    slots.add(slot);
    add(draft.devices, touch.devices, d.id, d);
  }
}

/** Gateways a change touched: those of touched gateways and buses, and each touched device's old and new one. */
function touchedGateways(before: Rows, after: Rows, t: Touched): string[] {
  const out = new Set<string>(t.gateways);
  for (const id of t.buses) for (const r of [before, after]) { const b = r.buses.get(id); if (b) out.add(b.value.gateway); }
  for (const id of t.devices) {
    for (const r of [before, after]) {
      const d = r.devices.get(id);
      const b = d && r.buses.get(d.value.bus);
      if (b) out.add(b.value.gateway);
    }
  }
  return [...out].sort();
}

export function problemsError(problems: Problem[], code: string = CloudErrors.REGISTRY_INVALID): CsError {
  const text = problems.slice(0, 10).map((p) => `${p.kind} ${p.id}: ${p.field}: ${p.message}`).join('; ');
  return new CsError(code, problems.length > 10 ? `${text}; and ${problems.length - 10} more` : text, { problems });
}

export function createRegistry(deps: RegistryDeps): Registry {
  const { database, seed, now, logger } = deps;
  const district = liveCopy(seed);
  const knownUnits = new Set(seed.units.map((u) => u.id));
  let rows = emptyRows();
  let version = -1;
  let retiredDevices = new Map<string, RetiredDevice>();
  let retiredSorted: RetiredDevice[] | undefined;
  const listeners = new Set<RegistryListener>();
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  function install(next: Rows, v: number, gateways: string[]): void {
    rows = next;
    version = v;
    swap(district, snapshotOf(next, seed));
    knownUnits.clear();
    for (const u of district.units) knownUnits.add(u.id);
    retiredDevices = new Map([...next.devices.values()].filter((s) => s.retiredAt !== null)
      .map((s) => [s.value.id, { device: s.value, gateway: next.buses.get(s.value.bus)?.value.gateway ?? '', retiredAt: s.retiredAt! }]));
    retiredSorted = undefined;
    if (!gateways.length) return;
    for (const l of listeners) {
      try {
        l({ gateways });
      } catch (err) {
        logger.error({ err }, 'registry listener failed');
      }
    }
  }

  async function reload(): Promise<boolean> {
    let v = await readVersion(database.db);
    if (v === version) return false;
    const before = snapshotOf(rows, seed);
    let next: Rows;
    // The version read before and after the rows: equal, no change was committed in between.
    for (;;) {
      next = await loadRows(database.db);
      const after = await readVersion(database.db);
      if (after === v) break;
      v = after;
    }
    const after = snapshotOf(next, seed);
    install(next, v, version < 0 ? [] : changedGateways(before, after));
    return true;
  }

  async function applyNow<T>(change: Change<T>, checked = true, audit?: RegistryAudit): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const draft = copyRows(rows);
      const touch = noneTouched();
      const at = now();
      const out = change(draft, touch, at);
      const problems = checked ? changeProblems(draft, touch, deps) : [];
      if (problems.length) throw problemsError(problems);
      const size = touch.devices.size + touch.buses.size + touch.gateways.size + touch.units.size + touch.districts.size;
      if (size === 0) return out;
      let written: { ok: boolean; version: number };
      try {
        const entries = audit ? entriesOf(audit, rows, draft, touch) : [];
        written = await writeChange(database, draft, touch, version, at,
          entries.length ? (trx, v) => appendRegistryLog(trx, at, audit!.actor, v, entries) : undefined);
      } catch (err) {
        // A unique index another worker's change got to first (the same Modbus slot).
        if (/unique|constraint/i.test((err as Error).message)) throw new CsError(CloudErrors.REGISTRY_CONFLICT, `the change conflicts with the registry: ${(err as Error).message}`);
        throw err;
      }
      if (written.ok) {
        // After a bulk change PostgreSQL's planner needs fresh statistics, or it sorts whole tables for a page.
        if (database.kind === 'postgres' && touch.devices.size >= 1000) {
          await sql`analyze registry_devices`.execute(database.db).catch((err: Error) => logger.warn({ err: err.message }, 'registry statistics not refreshed'));
        }
        install(draft, written.version, touchedGateways(rows, draft, touch));
        return out;
      }
      if (attempt >= 3) throw new CsError(CloudErrors.REGISTRY_CONFLICT, 'the registry kept changing under this change; try again');
      await reload(); // another worker changed it: judge the change again on what is there now
    }
  }

  return {
    district,
    knownUnits,
    rows: () => rows,
    version: () => version,
    retired: (id) => retiredDevices.get(id),
    retiredAll: () => (retiredSorted ??= [...retiredDevices.values()].sort((a, b) => (a.device.id < b.device.id ? -1 : 1))),
    gateway(id) {
      const g = district.gateways.find((x) => x.id === id);
      if (!g) return undefined;
      const buses = district.buses.filter((b) => b.gateway === id);
      const ids = new Set(buses.map((b) => b.id));
      return { gateway: g, buses, devices: district.devices.filter((d) => ids.has(d.bus)) };
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    apply: (change, audit) => serial(() => applyNow(change, true, audit)),
    refresh: () => serial(reload),
    onVersion: async (v) => v !== version && serial(reload),
    async start() {
      await serial(async () => {
        await reload();
        // The seed was checked when it was loaded (devices/district.ts loadDistrict): it is added as it is.
        await applyNow((draft, touch, at) => addSeed(draft, touch, seed, at, logger), false);
      });
      logger.info({ version, devices: district.devices.length, gateways: district.gateways.length }, 'registry loaded');
    },
  };
}
