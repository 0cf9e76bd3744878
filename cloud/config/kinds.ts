import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { check, type SchemaProblem } from '../../lib/schema.ts';
import { WorkCalendar } from '../calendar.ts';
import { Catalogue, checkCatalogue } from '../catalogue/index.ts';
import { checkRouting, Routing } from '../routing.ts';
import { checkRuleSet, RuleSet } from '../rules.ts';
import { EmergencySettings, EscalationSettings } from './settings.ts';

/**
 * The kinds of configuration that are data (README "Configuration as data"), each defined once here:
 * its schema (TypeBox: validation, types, OpenAPI) and the cross-checks the schema cannot say
 * (against the district's units and devices, the profiles' points). A document is checked whole:
 * every problem is named as `{ key, message }`, and any problem refuses it.
 */

export const CONFIG_KINDS = ['rules', 'catalogue', 'routing', 'calendar', 'escalation', 'emergency'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];
export const ConfigKindT = Type.Union(CONFIG_KINDS.map((k) => Type.Literal(k)), { description: CONFIG_KINDS.join(', ') });
export const CONFIG_SOURCES = ['api', 'file'] as const;
export type ConfigSource = (typeof CONFIG_SOURCES)[number];
export const ConfigSourceT = Type.Union(CONFIG_SOURCES.map((k) => Type.Literal(k)));
export const CONFIG_OUTCOMES = ['applied', 'refused'] as const;
export type ConfigOutcome = (typeof CONFIG_OUTCOMES)[number];
export const ConfigOutcomeT = Type.Union(CONFIG_OUTCOMES.map((k) => Type.Literal(k)));

/** What the cross-checks hold a document against. */
export interface CheckContext { district: District; profiles: Map<string, Profile> }

export interface KindSpec<T extends TSchema = TSchema> {
  schema: T;
  /** What the schema cannot say; run only on a document that passed the schema. */
  cross(doc: Static<T>, ctx: CheckContext): SchemaProblem[];
  /** Where it lives in the docs, for messages. */
  about: string;
}

/** `routing.rules[0].unit: unknown unit "x"` as `{ key: 'rules[0].unit', message: 'unknown unit "x"' }`. */
function splitProblem(line: string, prefix: string): SchemaProblem {
  const at = line.indexOf(': ');
  const key = at < 0 ? '(root)' : line.slice(0, at);
  return { key: key.startsWith(prefix) ? key.slice(prefix.length) : key, message: at < 0 ? line : line.slice(at + 2) };
}

function calendarProblems(c: WorkCalendar): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  // "HH:MM" strings compare as times.
  let end = '';
  c.workingHours.forEach(([a, b], i) => {
    if (b <= a) problems.push({ key: `workingHours[${i}]`, message: `ends (${b}) before it starts (${a})` });
    else if (a < end) problems.push({ key: `workingHours[${i}]`, message: 'overlaps the period before it (periods in order, apart)' });
    end = b;
  });
  const off = new Set(c.holidays);
  c.workdays.forEach((d, i) => { if (off.has(d)) problems.push({ key: `workdays[${i}]`, message: `${d} is also one of the city's holidays` }); });
  // Every day of the week off leaves only the listed workdays: once they have passed, no time limit in working
  // hours or days has an end, and every case would fail to be created (cloud/calendar.ts addWorkingTime).
  if (new Set(c.weekend).size >= 7) problems.push({ key: 'weekend', message: 'every day of the week is off: no working time once the listed workdays have passed' });
  return problems;
}

export const KINDS: { [K in ConfigKind]: KindSpec } = {
  rules: {
    schema: RuleSet,
    about: 'rules per device kind with per-device overrides (devices/rules.ts)',
    cross: (doc, ctx) => checkRuleSet(doc as RuleSet, ctx.profiles, '', new Map(ctx.district.devices.map((d) => [d.id, d.profile]))),
  },
  catalogue: {
    schema: Catalogue,
    about: 'case categories with time limits and milestones (docs/catalogue.md)',
    cross: (doc, ctx) => checkCatalogue(doc as Catalogue, ctx.district),
  },
  routing: {
    schema: Routing,
    about: 'routing rules, unit members and duty leaders (cloud/routing.ts)',
    cross: (doc, ctx) => checkRouting(doc as Routing, ctx.district).map((l) => splitProblem(l, 'routing.')),
  },
  calendar: {
    schema: WorkCalendar,
    about: 'the work calendar (cloud/calendar.ts)',
    cross: (doc) => calendarProblems(doc as WorkCalendar),
  },
  escalation: {
    schema: EscalationSettings,
    about: 'the case clock: reminders and escalation steps (cloud/escalation.ts)',
    cross: () => [],
  },
  emergency: {
    schema: EmergencySettings,
    about: 'emergency mode: warning policy, fast poll interval, retries (cloud/emergency/)',
    cross: () => [],
  },
};

export type ConfigDocs = { rules: RuleSet; catalogue: Catalogue; routing: Routing; calendar: WorkCalendar; escalation: EscalationSettings; emergency: EmergencySettings };

export function isConfigKind(k: string): k is ConfigKind {
  return (CONFIG_KINDS as readonly string[]).includes(k);
}

/** A whole document checked: its value (defaults filled) or every problem found (schema first, then cross-checks). */
export function checkDocument<K extends ConfigKind>(kind: K, doc: unknown, ctx: CheckContext): { ok: true; value: ConfigDocs[K] } | { ok: false; problems: SchemaProblem[] } {
  const spec = KINDS[kind];
  const r = check(spec.schema, doc);
  if (!r.ok) return r;
  const problems = spec.cross(r.value, ctx);
  return problems.length ? { ok: false, problems } : { ok: true, value: r.value as ConfigDocs[K] };
}
