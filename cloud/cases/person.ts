import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import type { CaseSource, Severity } from '../../lib/vocabulary.ts';
import { districtOf, type Device } from '../../devices/district.ts';
import { CloudErrors } from '../errors.ts';
import { caseCategory, categoryIndex, DEMO_CATALOGUE } from '../catalogue/index.ts';
import { mergeKeyFor, scheduleFor } from '../categories.ts';
import { routeCase } from '../routing.ts';
import type { DB } from '../db/schema.ts';
import { nextCaseId } from './ids.ts';
import { appendHistory, type HistoryInput } from './history.ts';
import type { CaseRow } from './json.ts';
import type { CaseEnv } from './policy.ts';

/**
 * A case from people (docs/domain.md#cases-from-people): an inspector's finding, a hotline call, a
 * citizen's report an operator accepted. Registered against a catalogue category and dispatched to the
 * routed unit with the category's deadline; an inspector's self-correction (自查自纠) is registered and
 * closed in one step. A client id makes a resend (a phone's offline queue) answer the first case.
 */

export interface PersonCaseInput {
  /** Catalogue category code (GET /api/catalogue), e.g. E0102 exposed garbage. */
  category: string;
  location: { lat?: number; lon?: number; address?: string; componentCode?: string; grid?: string };
  description: string;
  source: Exclude<CaseSource, 'sensor'>;
  /** Who registers it: `user:NAME` or `token:ID`, and the role. */
  reporter: { actor: string; role: string };
  at: number;
  /** Photo ids uploaded first (POST /api/photos). */
  photos?: string[];
  selfCorrected?: boolean;
  /** Client-chosen id: the same reporter sending it again gets the first case back. */
  clientId?: string;
  severity?: Severity;
}

/** How far (degrees) outside the box of the district's assets a point may still be. */
const AREA_MARGIN_DEG = 0.5;

const bad = (message: string, details?: Record<string, unknown>) => new CsError(CloudErrors.CASE_BAD_INPUT, message, details);

/**
 * Registers a person's case inside the caller's write transaction (`database.write`); returns the case
 * row, and `replayed` when the client id was seen before from the same reporter (nothing is written then).
 */
export async function registerPersonCase(trx: Kysely<DB>, env: CaseEnv, input: PersonCaseInput): Promise<{ row: CaseRow; replayed: boolean }> {
  const catalogue = env.catalogue ?? DEMO_CATALOGUE;
  const cat = categoryIndex(catalogue).get(input.category);
  if (!cat) {
    throw new CsError(CloudErrors.CATEGORY_UNKNOWN, `no category "${input.category}" in the catalogue (GET /api/catalogue lists them, e.g. ${catalogue.categories.slice(0, 3).map((c) => c.code).join(', ')})`);
  }
  if (input.selfCorrected && input.source !== 'inspector') throw bad(`only an inspector's case can be self-corrected (source is ${input.source})`);
  const description = input.description.trim();
  if (!description) throw bad('description is empty: say what was found');
  const { at, reporter } = input;
  const clientKey = input.clientId ? `register/${reporter.actor}/${input.clientId}` : undefined;
  if (clientKey) {
    const seen = await trx.selectFrom('case_actions').select('case_id').where('id', '=', clientKey).executeTakeFirst();
    if (seen) return { row: await trx.selectFrom('cases').selectAll().where('id', '=', seen.case_id).executeTakeFirstOrThrow(), replayed: true };
  }
  const device = assetOf(env, input.location.componentCode);
  const { lat, lon } = pointOf(env, input.location, device);
  const category = caseCategory(cat);
  const cls = cat.class;
  const hazard = cat.hazards?.[0] ?? cat.code;
  const grid = input.location.grid ?? device?.grid ?? null;
  const unit = device
    ? routeCase(env.routing, { hazard, cls, category, device, kind: device.profile })
    : cat.routing.unit;
  if (!unit) throw bad(`category ${cat.code} (${cat.name.en}) is handled by the asset's unit: give location.componentCode`);
  const emergency = env.mode?.emergency() ?? false;
  const schedule = scheduleFor(category, cls, at, { calendar: env.calendar, emergency });
  const photos = [...new Set(input.photos ?? [])];
  if (photos.length) {
    // The reporter's own uploads, or photos no case holds yet: a hash alone never opens another case's photo.
    const rows = await trx.selectFrom('photos').leftJoin('case_photos', 'case_photos.photo_id', 'photos.id')
      .select(['photos.id', 'photos.by', 'case_photos.case_id']).where('photos.id', 'in', photos).execute();
    const usable = new Set(rows.filter((r) => r.by === reporter.actor || r.case_id === null).map((r) => r.id));
    const missing = photos.filter((p) => !usable.has(p));
    if (missing.length) throw bad(`no photo ${missing.map((m) => m.slice(0, 12)).join(', ')} uploaded by you: upload with POST /api/photos first`, { missing });
  }
  const self = input.selfCorrected === true;
  const state = self ? 'closed' : 'dispatched';
  const where = device?.name ?? input.location.address ?? `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  const districtCode = device ? districtOf(device) : (grid?.slice(0, 6) ?? env.district?.county ?? null);
  const id = await nextCaseId(trx, at);
  await trx.insertInto('cases').values({
    id, device: device?.id ?? '', hazard, class: cls, severity: input.severity ?? (cls === 'urgent' ? 'major' : 'minor'), state, unit,
    title: `${category.title}: ${where}`, description, opened_at: at, updated_at: at, deadline_at: schedule.deadline,
    emergency: schedule.emergency ? 1 : 0, emergency_epoch: schedule.emergency && emergency ? (env.mode?.epoch?.() ?? null) : null,
    breach_count: 0, last_value: 'null', threshold_id: '', point: '', lat, lon, address: input.location.address ?? device?.address ?? null,
    component_code: device?.componentCode ?? '', merge_key: device ? mergeKeyFor(env.categories, hazard, cls) : cat.code,
    hazards: JSON.stringify([hazard]), milestones: JSON.stringify(schedule.milestones), grid,
    dispatched_at: at, accepted_at: null, handled_at: self ? at : null, closed_at: self ? at : null, resume_state: null,
    rework_count: 0, extension_count: 0, escalation_level: 0, reminded_at: null, escalated_at: null,
    source: input.source, category: cat.code, reporter: reporter.actor, self_corrected: self ? 1 : 0,
    district: districtCode,
  }).execute();
  if (clientKey) await trx.insertInto('case_actions').values({ id: clientKey, case_id: id, action: 'register', actor: reporter.actor, at }).execute();
  for (const p of photos) {
    await trx.insertInto('case_photos').values({ case_id: id, photo_id: p, stage: 'register', flags: '[]', at, by: reporter.actor })
      .onConflict((oc) => oc.columns(['case_id', 'photo_id']).doNothing()).execute();
  }
  const who = { actor: reporter.actor, role: reporter.role };
  const evidence = photos.length ? JSON.stringify(photos.map((p) => `/api/photos/${p}`)) : null;
  const epoch = schedule.emergency && emergency ? (env.mode?.epoch?.() ?? null) : null;
  // What the evaluation counts by, in the chained history (docs/evaluation.md#facts).
  const facts = { deadline: new Date(schedule.deadline).toISOString(), unit, source: input.source, district: districtCode, emergencyEpoch: epoch, category: cat.code, reporter: reporter.actor, selfCorrected: self };
  const rows: HistoryInput[] = [{ at, action: 'register', ...who, from_state: null, to_state: 'registered', note: description, evidence, details: JSON.stringify(facts) }];
  if (self) {
    // Closed by the inspector who fixed it: not a verification (no verifier's check is counted).
    rows.push({ at, action: 'handle', ...who, from_state: 'registered', to_state: 'handled', note: 'fixed on the spot (自查自纠)', details: JSON.stringify({ selfCorrected: true }) });
    rows.push({ at, action: 'close', ...who, from_state: 'handled', to_state: 'closed', note: 'self-corrected: closed at registration' });
  } else {
    rows.push({ at, action: 'dispatch', ...who, from_state: 'registered', to_state: 'dispatched', note: `dispatched to ${unit}`, details: JSON.stringify({ unit }) });
  }
  await appendHistory(trx, id, rows);
  return { row: await trx.selectFrom('cases').selectAll().where('id', '=', id).executeTakeFirstOrThrow(), replayed: false };
}

/** The asset a component code names, or undefined when none was given. */
function assetOf(env: CaseEnv, componentCode: string | undefined): Device | undefined {
  if (componentCode === undefined || componentCode === '') return undefined;
  const device = env.district?.devices.find((d) => d.componentCode === componentCode);
  if (!device) throw bad(`no asset with component code "${componentCode}" in the district`, { componentCode });
  return device;
}

/** The case's point: the one given, else the asset's; inside the district's area. */
function pointOf(env: CaseEnv, loc: PersonCaseInput['location'], device: Device | undefined): { lat: number; lon: number } {
  if ((loc.lat === undefined) !== (loc.lon === undefined)) throw bad('location needs both lat and lon, or neither with a componentCode');
  if (loc.lat === undefined || loc.lon === undefined) {
    if (!device) throw bad('location needs lat and lon, or the componentCode of an asset');
    return { lat: device.lat, lon: device.lon };
  }
  const { lat, lon } = loc;
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) throw bad(`location ${lat}, ${lon} is not a WGS-84 point`);
  const devices = env.district?.devices ?? [];
  if (devices.length) {
    const lats = devices.map((d) => d.lat);
    const lons = devices.map((d) => d.lon);
    const inside = lat >= Math.min(...lats) - AREA_MARGIN_DEG && lat <= Math.max(...lats) + AREA_MARGIN_DEG
      && lon >= Math.min(...lons) - AREA_MARGIN_DEG && lon <= Math.max(...lons) + AREA_MARGIN_DEG;
    if (!inside) throw bad(`location ${lat}, ${lon} is outside the city's area (lat/lon swapped?)`);
  }
  return { lat, lon };
}
