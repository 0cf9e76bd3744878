import type { Catalogue } from '../catalogue/schema.ts';
import { registerPersonCase } from '../cases/person.ts';
import type { CaseEnv } from '../cases/index.ts';
import type { RegisterCitizenCase } from './reports.ts';
import { catalogueOf, type ServiceCatalogue } from './services.ts';

/**
 * Open311 over the category catalogue (cloud/catalogue/): a service per category a citizen can report
 * without naming an asset (one with a responsible unit of its own, not device health); acceptance
 * registers the case through registerPersonCase (source citizen), dispatched with the category's deadline.
 */
export function catalogueServices(catalogue: Catalogue): ServiceCatalogue {
  const majors = new Map(catalogue.majors.map((m) => [`${m.kind}:${m.code}`, m.name]));
  return catalogueOf(catalogue.categories.filter((c) => c.routing.unit && c.class !== 'device-health').map((c) => ({
    code: c.code, name: c.name, group: majors.get(`${c.kind}:${c.major}`) ?? c.name, kind: c.kind, keywords: c.hazards ?? [],
  })));
}

export function citizenRegistrar(env: CaseEnv): RegisterCitizenCase {
  return async (trx, input) => {
    const media = input.mediaUrl ? `\n${input.mediaUrl}` : '';
    const out = await registerPersonCase(trx, env, {
      category: input.category, description: `${input.description || `citizen report ${input.reportId}`}${media}`, source: 'citizen',
      location: { lat: input.lat, lon: input.lon, address: input.address }, reporter: { actor: input.actor, role: input.role },
      at: input.at, clientId: `open311/${input.reportId}`,
    });
    return out.row.id;
  };
}
