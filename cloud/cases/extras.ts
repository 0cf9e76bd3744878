import type { Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';
import { photosOfCases } from '../photos/json.ts';
import type { CaseExtras, CaseRow } from './json.ts';
import type { WorkflowPolicy } from './policy.ts';
import { sensorClearance, verificationOf } from './verification.ts';

/** Photos of each case (one query) and, for handled cases, the verification check as it stands at `at`. */
export async function caseExtras(db: Kysely<DB>, rows: CaseRow[], at: number, policy: WorkflowPolicy): Promise<Map<string, CaseExtras>> {
  const photos = await photosOfCases(db, rows.map((r) => r.id));
  const out = new Map<string, CaseExtras>();
  for (const r of rows) {
    const extras: CaseExtras = { photos: photos.get(r.id) ?? [] };
    if (r.state === 'handled') extras.verification = verificationOf(await sensorClearance(db, r), at, policy);
    out.set(r.id, extras);
  }
  return out;
}
