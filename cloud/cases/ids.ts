import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/schema.ts';

/** Case ids: `C-YYYYMMDD-NNNN`, numbered per day in Asia/Shanghai (UTC+8, no daylight saving). */

const HOUR = 3_600_000;

function shanghaiDay(at: number): string {
  return new Date(at + 8 * HOUR).toISOString().slice(0, 10).replace(/-/g, '');
}

export function caseId(at: number, n: number): string {
  return `C-${shanghaiDay(at)}-${String(n).padStart(4, '0')}`;
}

/** The next id of the day, from the per-day counter (one row per day, incremented in the caller's transaction). */
export async function nextCaseId(trx: Kysely<DB>, at: number): Promise<string> {
  const row = await trx.insertInto('case_counters').values({ day: shanghaiDay(at), n: 1 })
    .onConflict((oc) => oc.column('day').doUpdateSet({ n: sql`case_counters.n + 1` }))
    .returning('n').executeTakeFirstOrThrow();
  return caseId(at, Number(row.n));
}
