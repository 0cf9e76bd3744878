import { readFileSync } from 'node:fs';
import { CsError } from '../../lib/errors.ts';
import { check, type SchemaProblem } from '../../lib/schema.ts';
import type { District } from '../../devices/district.ts';
import { CloudErrors } from '../errors.ts';
import type { Categories, Category } from '../categories.ts';
import type { TimeLimit, TimeUnit } from '../calendar.ts';
import { Catalogue, type CatalogueCategory } from './schema.ts';

/**
 * The category catalogue (docs/catalogue.md): one source of truth for people's categories and the
 * sensor hazards' (categoriesOf derives the per-hazard view the breach code reads). The demo's file
 * is cloud/catalogue/demo.json; a city loads its own (`catalogue` in the cloud's config file).
 */

export { Catalogue, CatalogueCategory } from './schema.ts';

export const DEMO_CATALOGUE_FILE = new URL('./demo.json', import.meta.url);

/** Reads, validates and checks a catalogue file; a bad one fails naming the key and the problem. */
export function loadCatalogue(file: string | URL = DEMO_CATALOGUE_FILE, district?: District): Catalogue {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CsError(CloudErrors.CATALOGUE_INVALID, `cannot read category catalogue ${String(file)}: ${(err as Error).message}`);
  }
  return parseCatalogue(body, String(file), district);
}

/** Validates a catalogue (TypeBox, then the checks below); throws CATALOGUE_INVALID naming each key. */
export function parseCatalogue(body: unknown, source: string, district?: District): Catalogue {
  const r = check(Catalogue, body);
  const problems = r.ok ? checkCatalogue(r.value, district) : r.problems;
  if (!r.ok || problems.length) {
    throw new CsError(CloudErrors.CATALOGUE_INVALID, `category catalogue ${source} invalid: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, { problems });
  }
  return r.value;
}

/** The longest time limit per unit: a year (52 weeks of five eight-hour working days). */
export const MAX_LIMIT: Record<TimeUnit, number> = { minutes: 525_600, hours: 8_760, workHours: 2_080, workDays: 260 };

/** What the schema cannot say: codes agree with kind and classes, unique codes, hazards and milestone names, limits of at most a year, known majors and units. */
export function checkCatalogue(c: Catalogue, district?: District): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const majors = new Set(c.majors.map((m) => `${m.kind}:${m.code}`));
  const units = district && new Set(district.units.map((u) => u.id));
  const codes = new Set<string>();
  const hazards = new Map<string, string>();
  c.categories.forEach((cat, i) => {
    const at = `categories[${i}]`;
    const want = `${cat.kind === 'component' ? 'C' : 'E'}${cat.major}${cat.minor}`;
    if (cat.code !== want) problems.push({ key: `${at}.code`, message: `must be ${want} (kind ${cat.kind}, major ${cat.major}, minor ${cat.minor})` });
    if (codes.has(cat.code)) problems.push({ key: `${at}.code`, message: `${cat.code} is given twice` });
    codes.add(cat.code);
    if (!majors.has(`${cat.kind}:${cat.major}`)) problems.push({ key: `${at}.major`, message: `no ${cat.kind} major class ${cat.major} in majors` });
    if (cat.routing.unit && units && !units.has(cat.routing.unit)) problems.push({ key: `${at}.routing.unit`, message: `unknown unit "${cat.routing.unit}"` });
    // A limit past a year is a slip (hours for minutes): a deadline beyond the calendar's ten-year search, or past
    // what a number holds, would fail the case's creation (cloud/calendar.ts addWorkingTime).
    const limits: [string, TimeLimit | undefined][] = [['limit', cat.limit], ...Object.entries(cat.limitByClass ?? {}).map(([c, l]) => [`limitByClass.${c}`, l] as [string, TimeLimit | undefined]),
      ...(cat.milestones ?? []).map((m, j) => [`milestones[${j}].limit`, m.limit] as [string, TimeLimit])];
    for (const [k, l] of limits) {
      if (l && l.amount > MAX_LIMIT[l.unit]) problems.push({ key: `${at}.${k}.amount`, message: `${l.amount} ${l.unit} is more than a year (at most ${MAX_LIMIT[l.unit]} ${l.unit})` });
    }
    // A case's milestones are reached by name (cloud/cases/work.ts): a second of one name could never be.
    const names = new Set<string>();
    (cat.milestones ?? []).forEach((m, j) => {
      if (names.has(m.name)) problems.push({ key: `${at}.milestones[${j}].name`, message: `a second milestone "${m.name}" (names are unique within a category)` });
      names.add(m.name);
    });
    for (const h of cat.hazards ?? []) {
      const other = hazards.get(h);
      if (other) problems.push({ key: `${at}.hazards`, message: `hazard "${h}" is already covered by ${other}` });
      hazards.set(h, cat.code);
    }
  });
  return problems;
}

/** The categories by code. */
export function categoryIndex(c: Catalogue): Map<string, CatalogueCategory> {
  return new Map(c.categories.map((cat) => [cat.code, cat]));
}

/** A catalogue category as the case code reads it (title, class, limits, milestones, merge group, unit). */
export function caseCategory(cat: CatalogueCategory): Category {
  return {
    code: cat.code,
    title: `${cat.name.en} (${cat.name.zh})`,
    class: cat.class,
    limit: cat.limit,
    ...(cat.limitByClass ? { limitByClass: cat.limitByClass } : {}),
    ...(cat.milestones ? { milestones: cat.milestones } : {}),
    ...(cat.group ? { group: cat.group } : {}),
    unit: cat.routing.asset ?? 'owner',
  };
}

/** The per-hazard view: every sensor hazard a category covers, with that category. */
export function categoriesOf(c: Catalogue): Categories {
  const out: Categories = {};
  for (const cat of c.categories) for (const h of cat.hazards ?? []) out[h] = caseCategory(cat);
  return out;
}

export const DEMO_CATALOGUE: Catalogue = loadCatalogue();

/**
 * The demo catalogue fitted to a district: a category routed to a unit the district does not have keeps
 * its asset routing only (a case then needs the asset's component code). Returns the codes changed, for
 * the cloud to warn about; a city gives its own catalogue (docs/catalogue.md) to route street cases.
 */
export function demoCatalogueFor(district: District): { catalogue: Catalogue; unrouted: string[] } {
  const units = new Set(district.units.map((u) => u.id));
  const unrouted: string[] = [];
  const categories = DEMO_CATALOGUE.categories.map((cat) => {
    if (!cat.routing.unit || units.has(cat.routing.unit)) return cat;
    unrouted.push(cat.code);
    const { unit: _dropped, ...routing } = cat.routing;
    return { ...cat, routing };
  });
  return { catalogue: { ...DEMO_CATALOGUE, categories }, unrouted };
}
