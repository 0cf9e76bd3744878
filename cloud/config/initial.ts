import type { District } from '../../devices/district.ts';
import type { Profile } from '../../devices/profile.ts';
import { CsError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { checkCatalogue, demoCatalogueFor, type Catalogue } from '../catalogue/index.ts';
import { CloudErrors } from '../errors.ts';
import { checkRouting, DEFAULT_ROUTING, type Routing } from '../routing.ts';
import { checkRuleSet, defaultRuleSet, type RuleSet } from '../rules.ts';

/**
 * The routing, catalogue and rules a cloud starts with (cloud/app.ts): its options' or the built-in
 * defaults, checked before anything opens so that a refusal leaves nothing to close. They become the
 * kinds' initial documents (cloud/config/index.ts), which the database's versions may then replace.
 */
export function startingConfig(opts: { district: District; profiles: Map<string, Profile>; routing?: Routing; catalogue?: Catalogue; rules?: RuleSet }, logger: Logger): { routing: Routing; catalogue: Catalogue; ruleSet: RuleSet } {
  const routing = opts.routing ?? DEFAULT_ROUTING;
  const routingProblems = checkRouting(routing, opts.district);
  if (routingProblems.length) throw new CsError(CloudErrors.RULES_INVALID, `routing invalid: ${routingProblems.join('; ')}`);
  const demo = opts.catalogue ? undefined : demoCatalogueFor(opts.district);
  if (demo?.unrouted.length) logger.warn({ categories: demo.unrouted }, 'the demo catalogue routes %d categories to units this district does not have: they need an asset (docs/catalogue.md)', demo.unrouted.length);
  const catalogue = opts.catalogue ?? demo!.catalogue;
  const catalogueProblems = checkCatalogue(catalogue, opts.district);
  if (catalogueProblems.length) throw new CsError(CloudErrors.CATALOGUE_INVALID, `catalogue invalid: ${catalogueProblems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  const ruleSet = opts.rules ?? defaultRuleSet(opts.profiles);
  const ruleProblems = checkRuleSet(ruleSet, opts.profiles, '', new Map(opts.district.devices.map((d) => [d.id, d.profile])));
  if (ruleProblems.length) throw new CsError(CloudErrors.RULES_INVALID, `rules invalid: ${ruleProblems.map((p) => `${p.key}: ${p.message}`).join('; ')}`);
  return { routing, catalogue, ruleSet };
}
