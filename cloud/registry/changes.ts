import type { Device } from '../../devices/district.ts';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import type { Change } from './service.ts';
import { canonicalDevice, type Rows, type Stamped, type Touched } from './store.ts';
import { shapeProblems } from './validate.ts';
import { problemsError } from './service.ts';

/**
 * The registry's changes as functions of the draft (cloud/registry/service.ts `apply`): create, update
 * (a move is an update of bus, unit id, units or place) and retire, for each kind of entity.
 */

export type Kind = keyof Rows;
const NOUN: Record<Kind, string> = { districts: 'district', units: 'unit', gateways: 'gateway', buses: 'bus', devices: 'device' };

export function found<T>(rows: Rows, kind: Kind, id: string): Stamped<T> {
  const s = (rows[kind] as Map<string, Stamped<T>>).get(id);
  if (!s) throw new CsError(CloudErrors.REGISTRY_NOT_FOUND, `no ${NOUN[kind]} "${id}" in the registry`);
  return s;
}

function inService<T>(rows: Rows, kind: Kind, id: string): Stamped<T> {
  const s = found<T>(rows, kind, id);
  if (s.retiredAt !== null) throw new CsError(CloudErrors.REGISTRY_RETIRED, `${NOUN[kind]} "${id}" is retired: it cannot change`);
  return s;
}

export function create<T>(kind: Kind, id: string, value: T): Change<Stamped<T>> {
  return (draft, touch, at) => {
    const m = draft[kind] as Map<string, Stamped<T>>;
    const had = m.get(id);
    if (had) throw new CsError(CloudErrors.REGISTRY_EXISTS, `${NOUN[kind]} "${id}" exists already${had.retiredAt !== null ? ' (retired: its id stays taken)' : ''}`);
    if (kind === 'devices') checkShape(value as Device);
    const s = { value, createdAt: at, updatedAt: at, retiredAt: null };
    m.set(id, s);
    touch[kind].add(id);
    return s;
  };
}

/** Merges a patch (null clears an optional field) into an entity in service. */
export function update<T extends object>(kind: Kind, id: string, patch: Record<string, unknown>): Change<Stamped<T>> {
  return (draft, touch, at) => {
    const s = inService<T>(draft, kind, id);
    const value = { ...s.value } as Record<string, unknown>;
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if (v === null) delete value[k];
      else value[k] = v;
    }
    if (kind === 'devices') checkShape(value as unknown as Device);
    const next = { ...s, value: value as T, updatedAt: at };
    (draft[kind] as Map<string, Stamped<T>>).set(id, next);
    touch[kind].add(id);
    return next;
  };
}

export function retire<T>(kind: Kind, id: string): Change<Stamped<T>> {
  return (draft, touch, at) => {
    const s = inService<T>(draft, kind, id);
    const next = { ...s, updatedAt: at, retiredAt: at };
    (draft[kind] as Map<string, Stamped<T>>).set(id, next);
    touch[kind].add(id);
    return next;
  };
}

function checkShape(d: Device): void {
  const problems = shapeProblems(d, d.id);
  if (problems.length) throw problemsError(problems);
}

/**
 * Many devices at once (the bulk import): each created, or replacing the one in service with its id.
 * The devices were shape-checked by the caller; the references are checked by `apply` on the whole draft.
 */
export function putDevices(devices: Device[]): Change<{ created: number; updated: number; unchanged: number }> {
  return (draft: Rows, touch: Touched, at: number) => {
    let created = 0;
    let updated = 0;
    let unchanged = 0;
    for (const d of devices) {
      const s = draft.devices.get(d.id);
      if (!s) {
        draft.devices.set(d.id, { value: d, createdAt: at, updatedAt: at, retiredAt: null });
        created++;
      } else if (s.retiredAt !== null) {
        throw problemsError([{ kind: 'device', id: d.id, field: 'id', message: `device "${d.id}" is retired: its id stays taken` }], CloudErrors.REGISTRY_INVALID);
      } else if (JSON.stringify(canonicalDevice(s.value)) === JSON.stringify(canonicalDevice(d))) {
        unchanged++;
        continue;
      } else {
        draft.devices.set(d.id, { ...s, value: d, updatedAt: at });
        updated++;
      }
      touch.devices.add(d.id);
    }
    return { created, updated, unchanged };
  };
}
