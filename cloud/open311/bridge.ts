import type { District } from '../../devices/district.ts';
import { categoryFor, scheduleFor } from '../categories.ts';
import { appendHistory, nextCaseId, type CaseEnv } from '../cases/index.ts';
import type { RegisterCitizenCase } from './reports.ts';
import { catalogueOf, type ServiceCatalogue } from './services.ts';

/**
 * INTERIM, until the category catalogue (cloud/catalogue/) and registerPersonCase (cloud/cases/person.ts)
 * land (helper "people"): services from the hazard categories, and a citizen case registered and
 * dispatched with the category's time limit to the owner unit of the nearest asset.
 */
export function interimServices(env: CaseEnv): ServiceCatalogue {
  return catalogueOf(Object.entries(env.categories).filter(([, c]) => c.class !== 'device-health').map(([code, c]) => {
    const m = /^(.*?)\s*\((.*)\)$/.exec(c.title);
    return { code, name: { zh: m?.[2] ?? c.title, en: m?.[1] ?? c.title }, group: { zh: '事件', en: 'events' }, kind: 'event' as const, keywords: [] };
  }));
}

export function interimRegister(env: CaseEnv, district: District): RegisterCitizenCase {
  return async (trx, input) => {
    const category = categoryFor(env.categories, input.category, 'routine');
    const schedule = scheduleFor(category, category.class, input.at, { calendar: env.calendar });
    const near = input.lat === undefined ? district.devices[0]
      : district.devices.reduce((a, d) => (Math.hypot(d.lat - input.lat!, d.lon - input.lon!) < Math.hypot(a.lat - input.lat!, a.lon - input.lon!) ? d : a));
    const unit = near.ownerUnit;
    const id = await nextCaseId(trx, input.at);
    await trx.insertInto('cases').values({
      id, device: '', source: 'citizen', category: input.category, reporter: input.actor, self_corrected: 0, district: null, hazard: input.category, class: category.class, severity: 'minor', state: 'dispatched', unit,
      title: `${category.title}: ${input.address ?? 'citizen report'}`, description: input.description, opened_at: input.at, updated_at: input.at,
      deadline_at: schedule.deadline, emergency: 0, emergency_epoch: null, breach_count: 1, last_value: 'null', threshold_id: '', point: '',
      lat: input.lat ?? near.lat, lon: input.lon ?? near.lon, address: input.address ?? null, component_code: '', merge_key: `citizen:${input.reportId}`,
      hazards: JSON.stringify([input.category]), milestones: JSON.stringify(schedule.milestones), grid: null, dispatched_at: input.at,
      accepted_at: null, handled_at: null, closed_at: null, resume_state: null, rework_count: 0, extension_count: 0, escalation_level: 0,
      reminded_at: null, escalated_at: null,
    }).execute();
    await appendHistory(trx, id, [
      { at: input.at, action: 'register', actor: input.actor, role: 'operator', from_state: null, to_state: 'registered', note: `citizen report ${input.reportId} accepted` },
      { at: input.at, action: 'dispatch', actor: input.actor, role: 'operator', from_state: 'registered', to_state: 'dispatched', note: `dispatched to ${unit}` },
    ]);
    return id;
  };
}
