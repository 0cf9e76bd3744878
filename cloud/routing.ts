import { Type, type Static } from '@sinclair/typebox';
import type { Device, District } from '../devices/district.ts';
import { CaseClassT, type CaseClass } from '../lib/vocabulary.ts';
import { responsibleUnit, type Category } from './categories.ts';

/**
 * Routing as data (docs/domain.md#the-case): the first rule that matches a case's hazard, class,
 * device kind and grid cell names the responsible unit; when none matches, the asset's owner
 * (or, for sensor health, its maintainer) is responsible. Units have members and a duty leader,
 * the second rung of the escalation ladder.
 */

export const RoutingRule = Type.Object({
  /** Hazard (category) this rule applies to. */
  hazard: Type.Optional(Type.String()),
  class: Type.Optional(CaseClassT),
  /** Device kind (profile kind), e.g. `manhole-cover`. */
  kind: Type.Optional(Type.String()),
  /** Grid cell code or a prefix of it (a prefix routes a whole street office). */
  grid: Type.Optional(Type.String()),
  /** Asset owner unit this rule applies to. */
  owner: Type.Optional(Type.String()),
  unit: Type.String(),
}, { additionalProperties: false });
export type RoutingRule = Static<typeof RoutingRule>;

export const UnitInfo = Type.Object({
  members: Type.Array(Type.String(), { default: [] }),
  /** The unit's duty leader (escalation rung 1). */
  dutyLeader: Type.Optional(Type.String()),
}, { additionalProperties: false });
export type UnitInfo = Static<typeof UnitInfo>;

export const Routing = Type.Object({
  rules: Type.Array(RoutingRule, { default: [] }),
  units: Type.Record(Type.String(), UnitInfo, { default: {} }),
  /** Who the command centre is (escalation rung 2). */
  commandCentre: Type.String({ default: 'command-centre' }),
}, { additionalProperties: false });
export type Routing = Static<typeof Routing>;

export const DEFAULT_ROUTING: Routing = { rules: [], units: {}, commandCentre: 'command-centre' };

export interface RouteInput {
  hazard: string;
  cls: CaseClass;
  category: Category;
  device: Pick<Device, 'ownerUnit' | 'maintainerUnit' | 'grid'>;
  kind: string;
}

export function routeCase(routing: Routing, r: RouteInput): string {
  for (const rule of routing.rules) {
    if (rule.hazard !== undefined && rule.hazard !== r.hazard) continue;
    if (rule.class !== undefined && rule.class !== r.cls) continue;
    if (rule.kind !== undefined && rule.kind !== r.kind) continue;
    if (rule.owner !== undefined && rule.owner !== r.device.ownerUnit) continue;
    if (rule.grid !== undefined && !(r.device.grid ?? '').startsWith(rule.grid)) continue;
    return rule.unit;
  }
  return responsibleUnit(r.category, r.cls, r.device);
}

/** Routing rules may only name units the district knows. */
export function checkRouting(routing: Routing, district: District): string[] {
  const units = new Set(district.units.map((u) => u.id));
  const problems: string[] = [];
  routing.rules.forEach((r, i) => { if (!units.has(r.unit)) problems.push(`routing.rules[${i}].unit: unknown unit "${r.unit}"`); });
  for (const u of Object.keys(routing.units)) if (!units.has(u)) problems.push(`routing.units.${u}: unknown unit`);
  return problems;
}
