import { Type, type Static } from '@sinclair/typebox';
import { CaseClassT, CategoryKindT } from '../../lib/vocabulary.ts';
import { TimeLimit } from '../calendar.ts';

/**
 * The category catalogue (docs/catalogue.md) in the GB/T 30428.2 / CJ/T 214 shape: each category is
 * a component (部件) or an event (事件) with a 2-digit major and minor class; its code is `C` or `E`
 * and the four digits (C0104: a gas valve manhole cover; E0102: exposed garbage).
 */

const Names = Type.Object({ zh: Type.String({ minLength: 1 }), en: Type.String({ minLength: 1 }) }, { additionalProperties: false });
const TwoDigits = Type.String({ pattern: '^[0-9]{2}$' });

export const CatalogueMajor = Type.Object({ kind: CategoryKindT, code: TwoDigits, name: Names }, { additionalProperties: false });

export const CatalogueRouting = Type.Object({
  /** When the case names an asset: its owner unit or its maintainer unit handles it (default owner). */
  asset: Type.Optional(Type.Union([Type.Literal('owner'), Type.Literal('maintainer')])),
  /** The responsible unit when the case names no asset (a person's case in the street). */
  unit: Type.Optional(Type.String({ minLength: 1 })),
}, { additionalProperties: false });

export const CatalogueCategory = Type.Object({
  code: Type.String({ pattern: '^[CE][0-9]{4}$', description: 'C (component) or E (event), then the major and minor class' }),
  kind: CategoryKindT,
  major: TwoDigits,
  minor: TwoDigits,
  name: Names,
  /** The usual class: urgent runs on continuous hours under the 12-hour cap, routine on the work calendar. */
  class: CaseClassT,
  /** Time limit in the standard's units: minutes or hours (紧急工作时), workHours (工作时), workDays (工作日). */
  limit: TimeLimit,
  /** Another limit when a sensor rule gives another class (e.g. a routine tier-1 waterlogging). */
  limitByClass: Type.Optional(Type.Object({
    urgent: Type.Optional(TimeLimit), routine: Type.Optional(TimeLimit), 'device-health': Type.Optional(TimeLimit),
  }, { additionalProperties: false })),
  /** Sub-deadlines of urgent cases (e.g. on site within 30 minutes). */
  milestones: Type.Optional(Type.Array(Type.Object({ name: Type.String({ minLength: 1, maxLength: 32 }), limit: TimeLimit }, { additionalProperties: false }))),
  /** Sensor hazards of one group at one asset join one open case (cover open, water in the well, gas). */
  group: Type.Optional(Type.String({ minLength: 1 })),
  routing: CatalogueRouting,
  /** The sensor hazards (rule `hazard` ids) this category covers; each hazard in one category at most. */
  hazards: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
}, { additionalProperties: false });
export type CatalogueCategory = Static<typeof CatalogueCategory>;

export const Catalogue = Type.Object({
  name: Type.String({ minLength: 1 }),
  /** Which standard and edition the codes follow, and any local extension. */
  standard: Type.Optional(Type.String()),
  majors: Type.Array(CatalogueMajor, { minItems: 1 }),
  categories: Type.Array(CatalogueCategory, { minItems: 1 }),
}, { additionalProperties: false });
export type Catalogue = Static<typeof Catalogue>;
