import type { Kysely, Selectable } from 'kysely';
import type { Static } from '../../lib/vocabulary.ts';
import type { CasePhotosTable, DB, PhotosTable } from '../db/schema.ts';
import type { Photo, PHOTO_FLAGS } from '../http/schemas.ts';

/** Photos of cases as the API shows them (cloud/http/schemas.ts Photo). */

export type PhotoJson = Static<typeof Photo>;
export type PhotoFlag = (typeof PHOTO_FLAGS)[number];
type Held = Selectable<PhotosTable> & Pick<Selectable<CasePhotosTable>, 'case_id' | 'stage' | 'flags'>;

const iso = (ms: number | null) => (ms == null ? null : new Date(Number(ms)).toISOString());

export function photoToJson(p: Held): PhotoJson {
  return {
    id: p.id, url: `/api/photos/${p.id}`, type: p.type, size: Number(p.size), takenAt: iso(p.taken_at),
    lat: p.lat == null ? null : Number(p.lat), lon: p.lon == null ? null : Number(p.lon), stage: p.stage,
    flags: JSON.parse(p.flags) as PhotoFlag[], uploadedAt: iso(p.uploaded_at)!, by: p.by,
  };
}

/** The photos of each case, oldest upload first. */
export async function photosOfCases(db: Kysely<DB>, caseIds: string[]): Promise<Map<string, PhotoJson[]>> {
  const out = new Map<string, PhotoJson[]>(caseIds.map((id) => [id, []]));
  if (!caseIds.length) return out;
  const rows = await db.selectFrom('case_photos').innerJoin('photos', 'photos.id', 'case_photos.photo_id')
    // Uploaded to this case at, by: the link's (the same bytes may be uploaded to another case too).
    .select(['photos.id', 'photos.type', 'photos.size', 'photos.taken_at', 'photos.lat', 'photos.lon', 'case_photos.at as uploaded_at', 'case_photos.by as by',
      'case_photos.case_id', 'case_photos.stage', 'case_photos.flags'])
    .where('case_photos.case_id', 'in', caseIds).orderBy('case_photos.at').orderBy('photos.id').execute();
  for (const r of rows) out.get(r.case_id)?.push(photoToJson(r));
  return out;
}
