import { sql, type Kysely, type Selectable } from 'kysely';
import type { Logger } from '../lib/log.ts';
import type { Device } from '../devices/district.ts';
import { CsError } from '../lib/errors.ts';
import { CloudErrors } from './errors.ts';
import { categoryFor, classRank, deadlineFor, responsibleUnit, severityRank, URGENT_CAP_HOURS, type Categories, type CaseClass, type Severity } from './categories.ts';
import { describeBreach, type Breach } from './rules.ts';
import { OPEN_CASE_PREDICATE } from './db/migrations.ts';
import type { CaseHistoryTable, CasesTable, DB } from './db/schema.ts';

/**
 * Sensor cases: a breach registers and auto-dispatches a case, or updates the one open case of
 * its (device, hazard). The database enforces "one open case" with a partial unique index; the
 * insert says ON CONFLICT DO NOTHING and, when it loses a race, falls back to the update.
 */

export const CASE_STATES = ['registered', 'dispatched', 'accepted', 'handled', 'deferred', 'closed', 'void'] as const;
export type CaseState = (typeof CASE_STATES)[number];

export const SYSTEM_ACTOR = { actor: 'citysteward', role: 'system' } as const;

export type CaseRow = Selectable<CasesTable>;
export type HistoryRow = Selectable<CaseHistoryTable>;

export interface CaseChange {
  action: 'opened' | 'updated';
  caseId: string;
  hazard: string;
  severity: string;
}

export interface BreachContext {
  device: Device;
  breach: Breach;
  categories: Categories;
  /** Registration time (the cloud's clock). */
  at: number;
  /** A historical (replayed) reading may update an open case but never opens one. */
  historical: boolean;
  log: Logger;
}

/** `C-YYYYMMDD-NNNN`, the day in Asia/Shanghai (UTC+8, no daylight saving). */
export function caseId(at: number, n: number): string {
  const day = new Date(at + 8 * 3_600_000).toISOString().slice(0, 10).replace(/-/g, '');
  return `C-${day}-${String(n).padStart(4, '0')}`;
}

async function nextCaseNumber(trx: Kysely<DB>, at: number): Promise<string> {
  const day = new Date(at + 8 * 3_600_000).toISOString().slice(0, 10).replace(/-/g, '');
  const row = await trx.insertInto('case_counters').values({ day, n: 1 })
    .onConflict((oc) => oc.column('day').doUpdateSet({ n: sql`case_counters.n + 1` }))
    .returning('n').executeTakeFirstOrThrow();
  return caseId(at, Number(row.n));
}

async function appendHistory(trx: Kysely<DB>, caseId: string, entries: Omit<HistoryRow, 'case_id' | 'seq'>[]): Promise<void> {
  const last = await trx.selectFrom('case_history').select(sql<number>`coalesce(max(seq), 0)`.as('n'))
    .where('case_id', '=', caseId).executeTakeFirst();
  let seq = Number(last?.n ?? 0);
  await trx.insertInto('case_history').values(entries.map((e) => ({ ...e, case_id: caseId, seq: ++seq }))).execute();
}

/** Applies one breach inside the caller's write transaction. */
export async function applyBreach(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const updated = await updateOpenCase(trx, ctx);
    if (updated) return updated;
    if (ctx.historical) return undefined;
    const opened = await openCase(trx, ctx);
    if (opened) return opened;
    // Lost a race: another worker opened it between our update and insert. Update it instead.
  }
  throw new CsError(CloudErrors.CASE_UPSERT_FAILED, `could not open or update the case of ${ctx.device.id}/${ctx.breach.hazard}`);
}

async function updateOpenCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at } = ctx;
  // The UPDATE first: on PostgreSQL it locks the row, so what RETURNING gives is current.
  const row = await trx.updateTable('cases')
    .set({ breach_count: sql`breach_count + 1`, last_value: JSON.stringify(breach.value), updated_at: at })
    .where('device', '=', device.id).where('hazard', '=', breach.hazard).where(OPEN_CASE_PREDICATE)
    .returning(['id', 'severity', 'class', 'state', 'opened_at', 'deadline_at', 'breach_count', 'emergency'])
    .executeTakeFirst();
  if (!row) return undefined;
  const raise: Partial<CasesTable> = {};
  const notes = [`breach ${row.breach_count}: ${describeBreach(breach)}`];
  if (severityRank(breach.severity) > severityRank(row.severity)) {
    raise.severity = breach.severity;
    notes.push(`severity ${row.severity} -> ${breach.severity}`);
  }
  if (classRank(breach.class) > classRank(row.class)) {
    const category = categoryFor(ctx.categories, breach.hazard, breach.class);
    // The new class's limit runs from now, but never past the cap measured from registration.
    const due = Math.min(Number(row.deadline_at), deadlineFor(category, breach.class, at),
      breach.class === 'urgent' ? Number(row.opened_at) + URGENT_CAP_HOURS * 3_600_000 : Infinity);
    raise.class = breach.class;
    raise.deadline_at = due;
    if (breach.class === 'urgent') raise.emergency = 1;
    notes.push(`class ${row.class} -> ${breach.class}, deadline ${new Date(due).toISOString()}`);
  }
  if (Object.keys(raise).length) {
    await trx.updateTable('cases').set(raise).where('id', '=', row.id).execute();
  }
  await appendHistory(trx, row.id, [{
    at, action: 'update', ...SYSTEM_ACTOR, from_state: row.state, to_state: row.state, note: notes.join('; '),
  }]);
  ctx.log.info({ caseId: row.id, hazard: breach.hazard, breachCount: row.breach_count }, 'case updated by repeat breach');
  return { action: 'updated', caseId: row.id, hazard: breach.hazard, severity: raise.severity ?? row.severity };
}

async function openCase(trx: Kysely<DB>, ctx: BreachContext): Promise<CaseChange | undefined> {
  const { device, breach, at } = ctx;
  const category = categoryFor(ctx.categories, breach.hazard, breach.class);
  const unit = responsibleUnit(category, breach.class, device);
  const id = await nextCaseNumber(trx, at);
  const inserted = await trx.insertInto('cases').values({
    id,
    device: device.id,
    hazard: breach.hazard,
    class: breach.class,
    severity: breach.severity,
    state: 'dispatched',
    unit,
    title: `${category.title}: ${device.name}`,
    description: `Sensor ${device.id} breached ${describeBreach(breach)}.`,
    opened_at: at,
    updated_at: at,
    deadline_at: deadlineFor(category, breach.class, at),
    emergency: breach.class === 'urgent' ? 1 : 0,
    breach_count: 1,
    last_value: JSON.stringify(breach.value),
    threshold_id: breach.thresholdId,
    point: breach.point,
    lat: device.lat,
    lon: device.lon,
    address: device.address ?? null,
    component_code: device.componentCode,
  })
    .onConflict((oc) => oc.columns(['device', 'hazard']).where(OPEN_CASE_PREDICATE).doNothing())
    .returning('id').executeTakeFirst();
  if (!inserted) return undefined;
  await appendHistory(trx, id, [
    { at, action: 'register', ...SYSTEM_ACTOR, from_state: null, to_state: 'registered', note: `auto-registered: ${describeBreach(breach)}` },
    { at, action: 'dispatch', ...SYSTEM_ACTOR, from_state: 'registered', to_state: 'dispatched', note: `auto-dispatched to ${unit}` },
  ]);
  ctx.log.child({ caseId: id }).info({ hazard: breach.hazard, unit, severity: breach.severity }, 'case opened');
  return { action: 'opened', caseId: id, hazard: breach.hazard, severity: breach.severity };
}

export interface CaseJson {
  id: string;
  device: string;
  hazard: string;
  class: CaseClass;
  severity: Severity;
  state: CaseState;
  unit: string;
  title: string;
  description: string;
  openedAt: string;
  updatedAt: string;
  deadline: string;
  emergency: boolean;
  breachCount: number;
  lastValue: number | boolean | string | null;
  location: { lat: number; lon: number; address: string | null };
  componentCode: string;
}

export function caseToJson(r: CaseRow): CaseJson {
  return {
    id: r.id,
    device: r.device,
    hazard: r.hazard,
    class: r.class as CaseClass,
    severity: r.severity as Severity,
    state: r.state as CaseState,
    unit: r.unit,
    title: r.title,
    description: r.description,
    openedAt: iso(r.opened_at),
    updatedAt: iso(r.updated_at),
    deadline: iso(r.deadline_at),
    emergency: Number(r.emergency) === 1,
    breachCount: Number(r.breach_count),
    lastValue: parseJson(r.last_value),
    location: { lat: Number(r.lat), lon: Number(r.lon), address: r.address },
    componentCode: r.component_code,
  };
}

export function historyToJson(h: HistoryRow) {
  return { seq: Number(h.seq), at: iso(h.at), action: h.action, actor: h.actor, role: h.role, fromState: h.from_state, toState: h.to_state, note: h.note };
}

export function iso(ms: number | string): string {
  return new Date(Number(ms)).toISOString();
}

function parseJson(text: string): number | boolean | string | null {
  try {
    return JSON.parse(text) as number | boolean | string;
  } catch {
    return null;
  }
}
