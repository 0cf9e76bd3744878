import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { fileTypeFromBuffer } from 'file-type';
import { CsError } from '../../lib/errors.ts';
import { FINAL_STATES, type CaseState } from '../../lib/vocabulary.ts';
import { CloudErrors } from '../errors.ts';
import { actorOf, appendHistory, iso, visibleCase } from '../cases/index.ts';
import type { Database } from '../db/database.ts';
import type { EventBus } from '../events.ts';
import { principalOf, scopeUnit } from '../http/auth.ts';
import * as S from '../http/schemas.ts';
import { distanceM, readExif } from './exif.ts';
import { photosOfCases, photoToJson, type PhotoFlag } from './json.ts';
import { REGISTER_ROLES } from '../http/people-routes.ts';
import type { PhotoStore } from './store.ts';

/** Photos of cases (README "Cases"): upload to a case, and the bytes to those who may see a case holding them. */

export const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
/** Files in one upload at most. */
export const MAX_PHOTOS_PER_UPLOAD = 10;
/** Only these, decided from the bytes (file-type), never from the name or the declared type. */
export const PHOTO_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/webp']);
export const DEFAULT_PHOTO_MAX_DISTANCE_M = 200;

export interface PhotoRouteDeps {
  database: Database;
  /** Undefined when the cloud has no photo directory (PostgreSQL without `photosDir`): uploads answer 503. */
  store?: PhotoStore;
  now: () => number;
  events: EventBus;
  /** A photo whose GPS is farther than this from the asset is flagged far-from-asset. */
  maxDistanceM: number;
}

const PhotoIdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 hex' }) });

export async function photoRoutes(scope: FastifyInstance, deps: PhotoRouteDeps): Promise<void> {
  await scope.register(multipart, { limits: { fileSize: MAX_PHOTO_BYTES, files: MAX_PHOTOS_PER_UPLOAD, fields: 0, parts: MAX_PHOTOS_PER_UPLOAD } });
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { database, now } = deps;

  app.post('/api/cases/:id/photos', {
    bodyLimit: MAX_PHOTOS_PER_UPLOAD * (MAX_PHOTO_BYTES + 64 * 1024),
    config: { roles: ['crew', 'operator', 'commander', 'verifier', 'admin', 'integrator', 'inspector'] },
    schema: {
      summary: 'Upload photos to a case: multipart/form-data, field `photo`, one or more JPEG, PNG or WebP files of at most 10 MB each; a crew only to its unit\'s cases',
      description: 'The bytes decide the type (415 CS_CLOUD_PHOTO_TYPE otherwise); over 10 MB: 413 CS_CLOUD_PHOTO_TOO_LARGE. EXIF time and GPS are read: flags taken-before-case and far-from-asset. A closed or void case takes no photos: 409 CS_CLOUD_PHOTO_CASE_FINAL.',
      tags: ['photos'], consumes: ['multipart/form-data'], params: S.IdParams,
      response: { 201: S.PhotoUpload, 404: S.ErrorReply, 409: S.ErrorReply, 413: S.ErrorReply, 415: S.ErrorReply, 503: S.ErrorReply, ...S.authErrors },
    },
  }, async (req, reply) => {
    const principal = principalOf(req);
    const row = await visibleCase(database.db, req.params.id, principal);
    refuseFinal(row.id, row.state);
    if (!req.isMultipart()) throw new CsError(CloudErrors.UNSUPPORTED_MEDIA_TYPE, 'send the photos as multipart/form-data, field "photo"');
    if (!deps.store) throw new CsError(CloudErrors.PHOTOS_UNAVAILABLE, 'this cloud has no photo directory (photosDir); photos cannot be stored');
    const at = now();
    const actor = actorOf(principal);
    const stored = await receivePhotos(req, deps.store, (exif) => {
      const flags: PhotoFlag[] = [];
      if (exif.takenAt !== null && exif.takenAt < Number(row.opened_at)) flags.push('taken-before-case');
      if (exif.lat !== null && exif.lon !== null && distanceM(exif.lat, exif.lon, Number(row.lat), Number(row.lon)) > deps.maxDistanceM) flags.push('far-from-asset');
      return flags;
    });
    const ids = await database.write(async (trx) => {
      // The case may have been closed or voided while the files arrived.
      const now = await trx.selectFrom('cases').select('state').where('id', '=', row.id).executeTakeFirstOrThrow();
      refuseFinal(row.id, now.state);
      const linked: string[] = [];
      for (const p of stored) {
        await trx.insertInto('photos').values({
          id: p.id, type: p.type, size: p.size, taken_at: p.exif.takenAt, lat: p.exif.lat, lon: p.exif.lon, uploaded_at: at, by: actor,
        }).onConflict((oc) => oc.column('id').doNothing()).execute();
        const r = await trx.insertInto('case_photos').values({ case_id: row.id, photo_id: p.id, stage: 'upload', flags: JSON.stringify(p.flags), at, by: actor })
          .onConflict((oc) => oc.columns(['case_id', 'photo_id']).doNothing()).returning('photo_id').executeTakeFirst();
        if (r) linked.push(p.id);
      }
      if (linked.length) {
        await appendHistory(trx, row.id, [{
          at, action: 'photo', actor, role: principal.role, from_state: row.state, to_state: row.state,
          details: JSON.stringify({ photos: linked }),
        }]);
      }
      return new Set(stored.map((p) => p.id));
    });
    const all = (await photosOfCases(database.db, [row.id])).get(row.id) ?? [];
    req.log.info({ caseId: row.id, photos: [...ids].map((i) => i.slice(0, 12)), role: principal.role }, 'photos uploaded');
    deps.events.emit({ type: 'case.updated', at: iso(at), caseId: row.id, unit: row.unit, device: row.device, hazard: row.hazard, state: row.state, data: { photos: [...ids] } });
    // In upload order.
    const byId = new Map(all.map((p) => [p.id, p]));
    return reply.code(201).send({ photos: [...ids].flatMap((id) => byId.get(id) ?? []) });
  });

  app.post('/api/photos', {
    bodyLimit: MAX_PHOTOS_PER_UPLOAD * (MAX_PHOTO_BYTES + 64 * 1024),
    config: { roles: REGISTER_ROLES },
    schema: {
      summary: 'Upload photos before registering a case (POST /api/cases `photos`): multipart/form-data, field `photo`, JPEG, PNG or WebP of at most 10 MB each',
      description: 'Answers the photos\' ids; they are shown only through a case that holds them.',
      tags: ['photos'], consumes: ['multipart/form-data'],
      response: { 201: S.PhotoUpload, 413: S.ErrorReply, 415: S.ErrorReply, 503: S.ErrorReply, ...S.authErrors },
    },
  }, async (req, reply) => {
    const principal = principalOf(req);
    if (!req.isMultipart()) throw new CsError(CloudErrors.UNSUPPORTED_MEDIA_TYPE, 'send the photos as multipart/form-data, field "photo"');
    if (!deps.store) throw new CsError(CloudErrors.PHOTOS_UNAVAILABLE, 'this cloud has no photo directory (photosDir); photos cannot be stored');
    const at = now();
    const stored = await receivePhotos(req, deps.store, () => []);
    await database.write(async (trx) => {
      for (const p of stored) {
        await trx.insertInto('photos').values({
          id: p.id, type: p.type, size: p.size, taken_at: p.exif.takenAt, lat: p.exif.lat, lon: p.exif.lon, uploaded_at: at, by: principal.actor,
        }).onConflict((oc) => oc.column('id').doNothing()).execute();
      }
    });
    req.log.info({ photos: stored.map((p) => p.id.slice(0, 12)), role: principal.role }, 'photos uploaded before a case');
    return reply.code(201).send({
      photos: stored.map((p) => photoToJson({ id: p.id, type: p.type, size: p.size, taken_at: p.exif.takenAt, lat: p.exif.lat, lon: p.exif.lon, uploaded_at: at, by: principal.actor, case_id: '', stage: 'upload', flags: '[]' })),
    });
  });

  app.get('/api/photos/:id', {
    schema: {
      summary: 'A photo\'s bytes (its own content-type), to those who may see a case holding it; a crew only its unit\'s cases\' photos (404 otherwise)',
      tags: ['photos'], params: PhotoIdParams,
      response: { 200: Type.String({ format: 'binary', description: 'image/jpeg, image/png or image/webp' }), 404: S.ErrorReply, ...S.authErrors },
    },
  }, async (req, reply) => {
    const p = principalOf(req);
    const scope = scopeUnit(p);
    let q = database.db.selectFrom('case_photos').innerJoin('cases', 'cases.id', 'case_photos.case_id').innerJoin('photos', 'photos.id', 'case_photos.photo_id')
      .select(['photos.id', 'photos.type']).where('case_photos.photo_id', '=', req.params.id);
    if (scope !== undefined) q = q.where('cases.unit', '=', scope);
    if (p.role === 'inspector') q = q.where('cases.reporter', '=', p.actor);
    const photo = await q.limit(1).executeTakeFirst();
    const bytes = photo && (await deps.store?.get(photo.id));
    if (!photo || !bytes) throw new CsError(CloudErrors.PHOTO_NOT_FOUND, `no photo "${req.params.id}"`);
    return reply.header('content-type', photo.type).header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, max-age=86400').header('content-disposition', 'inline').send(bytes as never);
  });
}

type Exif = Awaited<ReturnType<typeof readExif>>;
interface Received { id: string; type: string; size: number; exif: Exif; flags: PhotoFlag[] }

/**
 * Reads the multipart field `photo`: each file is checked and stored as it arrives, so at most one is
 * held in memory; a refused file leaves the ones before it on disk (content-addressed, no row: nothing refers to them).
 */
async function receivePhotos(req: FastifyRequest, store: PhotoStore, flagsOf: (exif: Exif) => PhotoFlag[]): Promise<Received[]> {
  const stored: Received[] = [];
  try {
    for await (const part of req.parts()) {
      if (part.type !== 'file' || part.fieldname !== 'photo') {
        throw new CsError(CloudErrors.PHOTO_MISSING, `unexpected multipart field "${part.fieldname}": send files in the field "photo"`);
      }
      const bytes = await part.toBuffer();
      const sniffed = await fileTypeFromBuffer(bytes);
      if (!sniffed || !PHOTO_TYPES.has(sniffed.mime)) {
        throw new CsError(CloudErrors.PHOTO_TYPE, `"${part.filename}" is ${sniffed ? sniffed.mime : 'not an image this service recognises'}; photos must be JPEG, PNG or WebP`);
      }
      const exif = await readExif(bytes);
      stored.push({ id: await store.put(bytes), type: sniffed.mime, size: bytes.length, exif, flags: flagsOf(exif) });
    }
  } catch (err) {
    throw multipartError(err);
  }
  if (!stored.length) throw new CsError(CloudErrors.PHOTO_MISSING, 'no photo in the upload: send one or more files in the multipart field "photo"');
  return stored;
}

/** A closed or void case's record is final (docs/domain.md#the-case): no photos are added to it. */
function refuseFinal(id: string, state: string): void {
  if (FINAL_STATES.includes(state as CaseState)) {
    throw new CsError(CloudErrors.PHOTO_CASE_FINAL, `case ${id} is ${state}: photos can no longer be added to it`, { state });
  }
}

/** @fastify/multipart's limits and malformed bodies as our codes. */
function multipartError(err: unknown): unknown {
  if (err instanceof CsError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new CsError(CloudErrors.PHOTO_TOO_LARGE, `a photo is over ${MAX_PHOTO_BYTES / 1024 / 1024} MB`);
  if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT') return new CsError(CloudErrors.PHOTO_TOO_LARGE, `at most ${MAX_PHOTOS_PER_UPLOAD} photos in one upload`);
  if (code === 'FST_FIELDS_LIMIT') return new CsError(CloudErrors.PHOTO_MISSING, 'send files in the multipart field "photo" only');
  return new CsError(CloudErrors.BAD_REQUEST, `malformed multipart body: ${(err as Error).message}`);
}
