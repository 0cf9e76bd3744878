import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import type { CasesTable } from '../db/schema.ts';
import type { CaseAction } from '../workflow.ts';
import type { CaseRow } from './json.ts';

/**
 * The same-state actions of the work on site (docs/domain.md#milestones-and-extension-requests):
 * milestones reached, and a crew's extension request a commander approves (`extend`) or refuses.
 */

/** A milestone as stored in a case's `milestones` JSON; `due` is null for one the category does not set. */
export interface StoredMilestone {
  name: string;
  due: number | null;
  reachedAt?: number | null;
}

/** A pending extension request as stored in `cases.extension_request`. */
export interface StoredExtensionRequest {
  reason: string;
  until: number | null;
  at: number;
  by: string;
}

export function parseMilestones(text: string | null): StoredMilestone[] {
  try {
    const v = JSON.parse(text ?? '[]') as unknown;
    return Array.isArray(v) ? (v as StoredMilestone[]).filter((m) => m && typeof m.name === 'string') : [];
  } catch {
    return [];
  }
}

export function parseExtensionRequest(text: string | null): StoredExtensionRequest | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as StoredExtensionRequest;
    return v && typeof v.reason === 'string' ? v : null;
  } catch {
    return null;
  }
}

/**
 * Milestone `name` reached at `at`: the first time is kept (a second arrival changes nothing but
 * the history); a case whose category has no such milestone records it all the same, without a due time.
 */
export function reachMilestone(row: CaseRow, name: string, at: number): { milestones: string; first: boolean } {
  const list = parseMilestones(row.milestones);
  const m = list.find((x) => x.name === name);
  if (m?.reachedAt != null) return { milestones: row.milestones, first: false };
  if (m) m.reachedAt = at;
  else list.push({ name, due: null, reachedAt: at });
  return { milestones: JSON.stringify(list), first: true };
}

export interface WorkBody {
  reason?: string;
  notes?: string;
  until?: string;
}

/** What a same-state work action changes on the case, and the details its history row keeps. */
export function applyWork(action: CaseAction, row: CaseRow, body: WorkBody, at: number, actor: string, set: Partial<CasesTable>, details: Record<string, unknown>): void {
  switch (action) {
    case 'note':
      if (!body.notes?.trim()) throw new CsError(CloudErrors.CASE_BAD_ACTION, 'note needs notes (body field "notes")');
      break;
    case 'on-site':
    case 'made-safe': {
      const r = reachMilestone(row, action, at);
      set.milestones = r.milestones;
      details.milestone = action;
      if (!r.first) details.alreadyReached = true;
      break;
    }
    case 'request-extension': {
      if (parseExtensionRequest(row.extension_request)) {
        throw new CsError(CloudErrors.CASE_BAD_ACTION, `case ${row.id} already has a pending extension request; a commander approves (extend) or refuses it first`);
      }
      let until: number | null = null;
      if (body.until !== undefined) {
        until = Date.parse(body.until);
        if (!Number.isFinite(until)) throw new CsError(CloudErrors.CASE_BAD_ACTION, 'request-extension: "until" is not an ISO 8601 instant');
        if (until <= Number(row.deadline_at)) {
          throw new CsError(CloudErrors.CASE_BAD_ACTION, `the requested deadline ${new Date(until).toISOString()} is not after the current one ${new Date(Number(row.deadline_at)).toISOString()}`);
        }
      }
      const req: StoredExtensionRequest = { reason: body.reason!.trim(), until, at, by: actor };
      set.extension_request = JSON.stringify(req);
      if (until !== null) details.until = new Date(until).toISOString();
      break;
    }
    case 'refuse-extension': {
      const pending = parseExtensionRequest(row.extension_request);
      if (!pending) throw new CsError(CloudErrors.CASE_BAD_ACTION, `case ${row.id} has no pending extension request to refuse`);
      set.extension_request = null;
      details.request = requestDetails(pending);
      break;
    }
    case 'extend': {
      // Approval answers a pending request; the history keeps what was asked.
      const pending = parseExtensionRequest(row.extension_request);
      if (pending) {
        set.extension_request = null;
        details.request = requestDetails(pending);
      }
      break;
    }
    default:
      break;
  }
}

function requestDetails(r: StoredExtensionRequest): Record<string, unknown> {
  return { reason: r.reason, until: r.until === null ? null : new Date(r.until).toISOString(), at: new Date(r.at).toISOString(), by: r.by };
}
