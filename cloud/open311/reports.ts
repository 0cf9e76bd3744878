import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { CsError } from '../../lib/errors.ts';
import { FINAL_STATES, isFinal, REPORT_STATES, type ReportState } from '../../lib/vocabulary.ts';
import { CloudErrors } from '../errors.ts';
import type { Database } from '../db/database.ts';
import type { DB } from '../db/schema.ts';
import type { Lang, ServiceCatalogue } from './services.ts';

/**
 * Citizen reports (issue 13, docs/architecture.md#open311): posted by a client app, they wait
 * (pending) until an operator accepts them (受理: a case with source `citizen` is registered and
 * dispatched like any case) or refuses them with a reason. What the citizen sees follows the case:
 * open while it runs, closed with notes when it is closed or voided.
 */

export { REPORT_STATES, type ReportState };

/** What a person gave to be contacted (shown to operators, never through Open311). */
export interface Contact {
  email?: string;
  phone?: string;
  first_name?: string;
  last_name?: string;
  account_id?: string;
  device_id?: string;
}

export interface NewReport {
  serviceCode: string;
  description: string;
  lat?: number;
  lon?: number;
  addressString?: string;
  addressId?: string;
  mediaUrl?: string;
  contact: Contact;
}

/** What acceptance needs registered: the case (source citizen) in the caller's write transaction; its id. */
export type RegisterCitizenCase = (trx: Kysely<DB>, input: {
  category: string; description: string; lat?: number; lon?: number; address?: string; mediaUrl?: string;
  reportId: string; actor: string; role: string; at: number;
}) => Promise<string>;

/** A report with the case it became (when accepted). */
export interface ReportView {
  id: string;
  serviceCode: string;
  description: string;
  lat: number | null;
  lon: number | null;
  addressString: string | null;
  addressId: string | null;
  mediaUrl: string | null;
  contact: Contact;
  state: ReportState;
  reason: string | null;
  requestedAt: number;
  updatedAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  caseId: string | null;
  case: { state: string; unit: string; deadlineAt: number; updatedAt: number; closedAt: number | null } | null;
}

export interface ReportFilter {
  ids?: string[];
  serviceCodes?: string[];
  from?: number;
  to?: number;
  states?: ReportState[];
  /** Open311 status (requestJson's): closed = refused, or accepted and its case closed or voided. */
  statuses?: ('open' | 'closed')[];
  limit: number;
}

export function newReportId(at: number): string {
  const day = new Date(at + 8 * 3_600_000).toISOString().slice(0, 10).replace(/-/g, '');
  return `R-${day}-${randomBytes(3).toString('hex')}`;
}

export function createReportStore(database: Database, now: () => number) {
  const db = database.db;
  async function load(filter: ReportFilter): Promise<ReportView[]> {
    let q = db.selectFrom('citizen_reports as r').leftJoin('cases as c', 'c.id', 'r.case_id')
      .select(['r.id', 'r.service_code', 'r.description', 'r.lat', 'r.lon', 'r.address_string', 'r.address_id', 'r.media_url', 'r.contact',
        'r.state', 'r.reason', 'r.requested_at', 'r.updated_at', 'r.decided_at', 'r.decided_by', 'r.case_id',
        'c.state as case_state', 'c.unit as case_unit', 'c.deadline_at as case_deadline', 'c.updated_at as case_updated', 'c.closed_at as case_closed']);
    if (filter.ids) q = q.where('r.id', 'in', filter.ids.length ? filter.ids : ['']);
    if (filter.serviceCodes?.length) q = q.where('r.service_code', 'in', filter.serviceCodes);
    if (filter.from !== undefined) q = q.where('r.requested_at', '>=', filter.from);
    if (filter.to !== undefined) q = q.where('r.requested_at', '<=', filter.to);
    if (filter.states?.length) q = q.where('r.state', 'in', filter.states);
    const st = filter.statuses;
    if (st?.length === 1) {
      // Filtered before the limit, so the newest 1000 of that status come back.
      q = q.where((eb) => {
        const closed = eb.or([eb('r.state', '=', 'refused'),
          eb.and([eb('r.state', '=', 'accepted'), eb('c.state', 'is not', null), eb('c.state', 'in', [...FINAL_STATES])])]);
        return st[0] === 'closed' ? closed : eb.not(closed);
      });
    }
    const rows = await q.orderBy('r.requested_at', 'desc').orderBy('r.id', 'desc').limit(filter.limit).execute();
    return rows.map((r) => ({
      id: r.id, serviceCode: r.service_code, description: r.description, lat: r.lat, lon: r.lon,
      addressString: r.address_string, addressId: r.address_id, mediaUrl: r.media_url, contact: JSON.parse(r.contact) as Contact,
      state: r.state as ReportState, reason: r.reason, requestedAt: Number(r.requested_at), updatedAt: Number(r.updated_at),
      decidedAt: r.decided_at == null ? null : Number(r.decided_at), decidedBy: r.decided_by, caseId: r.case_id,
      case: r.case_state == null ? null : {
        state: r.case_state, unit: r.case_unit!, deadlineAt: Number(r.case_deadline), updatedAt: Number(r.case_updated),
        closedAt: r.case_closed == null ? null : Number(r.case_closed),
      },
    }));
  }

  return {
    load,
    async get(id: string): Promise<ReportView | undefined> {
      return (await load({ ids: [id], limit: 1 }))[0];
    },
    async create(input: NewReport, keyId: string): Promise<string> {
      const at = now();
      const id = newReportId(at);
      await database.write((trx) => trx.insertInto('citizen_reports').values({
        id, service_code: input.serviceCode, description: input.description, lat: input.lat ?? null, lon: input.lon ?? null,
        address_string: input.addressString ?? null, address_id: input.addressId ?? null, media_url: input.mediaUrl ?? null,
        contact: JSON.stringify(input.contact), key_id: keyId, state: 'pending', reason: null,
        requested_at: at, updated_at: at, decided_at: null, decided_by: null, case_id: null,
      }).execute());
      return id;
    },
    /** Accepts a pending report: the case is registered in the same transaction; 409 when decided already. */
    async accept(id: string, by: { actor: string; role: string }, register: RegisterCitizenCase, services: ServiceCatalogue,
      fix: { category?: string; lat?: number; lon?: number } = {}): Promise<string> {
      const category = fix.category;
      if ((fix.lat === undefined) !== (fix.lon === undefined)) throw new CsError(CloudErrors.BAD_QUERY, 'give lat and lon together');
      const { actor } = by;
      return database.write(async (trx) => {
        const at = now();
        const r = await pendingRow(trx, id);
        const code = category ?? r.service_code;
        if (!services.get(code)) throw new CsError(CloudErrors.BAD_QUERY, `no category ${code} in the catalogue`);
        const caseId = await register(trx, {
          category: code, description: r.description, lat: fix.lat ?? r.lat ?? undefined, lon: fix.lon ?? r.lon ?? undefined,
          address: r.address_string ?? undefined, mediaUrl: r.media_url ?? undefined, reportId: id, actor, role: by.role, at,
        });
        await trx.updateTable('citizen_reports').set({ state: 'accepted', service_code: code, case_id: caseId, decided_at: at, decided_by: actor, updated_at: at })
          .where('id', '=', id).execute();
        return caseId;
      });
    },
    async refuse(id: string, actor: string, reason: string): Promise<void> {
      await database.write(async (trx) => {
        const at = now();
        await pendingRow(trx, id);
        await trx.updateTable('citizen_reports').set({ state: 'refused', reason, decided_at: at, decided_by: actor, updated_at: at })
          .where('id', '=', id).execute();
      });
    },
  };
}
export type ReportStore = ReturnType<typeof createReportStore>;

async function pendingRow(trx: Kysely<DB>, id: string) {
  // The update locks the row on PostgreSQL: two operators deciding at once, one wins.
  const r = await trx.updateTable('citizen_reports').set({ state: 'pending' }).where('id', '=', id).where('state', '=', 'pending')
    .returning(['service_code', 'description', 'lat', 'lon', 'address_string', 'media_url']).executeTakeFirst();
  if (r) return r;
  const exists = await trx.selectFrom('citizen_reports').select('state').where('id', '=', id).executeTakeFirst();
  if (!exists) throw new CsError(CloudErrors.REPORT_NOT_FOUND, `no citizen report ${id}`);
  throw new CsError(CloudErrors.REPORT_DECIDED, `citizen report ${id} is ${exists.state} already`);
}

const NOTES: Record<Lang, { pending: string; accepted: (c: string, s: string) => string; closed: string; void: string }> = {
  zh: { pending: '待受理', accepted: (c, s) => `已受理，案件 ${c}（${s}）`, closed: '已结案', void: '已作废' },
  en: { pending: 'awaiting acceptance', accepted: (c, s) => `accepted as case ${c} (${s})`, closed: 'case closed', void: 'case voided' },
};

/** The Open311 request of a report (GET requests): status open|closed and notes follow the case. */
export function requestJson(r: ReportView, services: ServiceCatalogue, unitName: (id: string) => string, lang: Lang): Record<string, unknown> {
  const n = NOTES[lang];
  const iso = (t: number) => new Date(t).toISOString();
  let status: 'open' | 'closed' = 'open';
  let notes = n.pending;
  let updated = r.updatedAt;
  if (r.state === 'refused') { status = 'closed'; notes = r.reason ?? ''; }
  if (r.state === 'accepted' && r.case) {
    updated = Math.max(updated, r.case.updatedAt);
    const final = isFinal(r.case.state);
    if (final) {
      status = 'closed';
      // Fixed wording only: the case's history holds staff free text (names, phone numbers).
      notes = n[r.case.state as 'closed' | 'void'];
      updated = r.case.closedAt ?? updated;
    } else notes = n.accepted(r.caseId!, r.case.state);
  }
  const service = services.get(r.serviceCode);
  return {
    service_request_id: r.id,
    status,
    status_notes: notes,
    service_name: service ? service.name[lang] : r.serviceCode,
    service_code: r.serviceCode,
    description: r.description,
    agency_responsible: r.case ? unitName(r.case.unit) : null,
    service_notice: null,
    requested_datetime: iso(r.requestedAt),
    updated_datetime: iso(updated),
    expected_datetime: r.case ? iso(r.case.deadlineAt) : null,
    address: r.addressString,
    address_id: r.addressId,
    zipcode: null,
    lat: r.lat,
    long: r.lon,
    media_url: r.mediaUrl,
  };
}
