import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { exifInstant } from '../../cloud/photos/exif.ts';
import { withExif } from '../helpers/exif.ts';
import { BACKENDS, freshDatabase, profiles, reading, ROOT, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Case photos (issue 11): real JPEG, PNG and WebP bytes over multipart on loopback, the type from
 * the bytes, the size limit, content-addressed storage, EXIF time and GPS flags, who may fetch a
 * photo, and photos cited by actions.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const district = syntheticDistrict(20, 1);
const GW = 'gw-t-0';
const fixture = (name: string) => readFileSync(join(ROOT, 'test/fixtures/photos', name));
const JPEG = fixture('tiny.jpg');
const PNG = fixture('tiny.png');
const WEBP = fixture('tiny.webp');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const body = async (r: Response): Promise<Record<string, any>> => (await r.json()) as Record<string, any>;

interface Photo { id: string; url: string; type: string; size: number; takenAt: string | null; lat: number | null; lon: number | null; stage: string; flags: string[]; uploadedAt: string; by: string }

describe.each(BACKENDS)('case photos on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let base: string;
    let photosDir: string;
    let clock = T0;
    let seq = 0;
    let next = 0;
    const tok: Record<string, string> = {};

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      photosDir = mkdtempSync(join(tmpdir(), 'cs-photos-'));
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => clock, escalation: false, photos: { dir: photosDir } });
      await cloud.start();
      for (const r of ['operator', 'commander', 'verifier', 'admin'] as const) tok[r] = await cloud.tokens.create(r);
      tok.crew = await cloud.tokens.create('crew', 'xz-drainage');
      tok.otherCrew = await cloud.tokens.create('crew', 'zh-gas');
      base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
    });

    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
      rmSync(photosDir, { recursive: true, force: true });
    });

    async function freshCase(): Promise<{ id: string; device: string; lat: number; lon: number }> {
      const device = district.devices.filter((d) => d.id.startsWith('WL-T-'))[next++];
      const r = await cloud.ingest(GW, topics.up(GW, device.id), reading(device.id, ++seq, clock, { level_m: 0.9 }));
      return { id: (r as { cases: { caseId: string }[] }).cases[0].caseId, device: device.id, lat: device.lat, lon: device.lon };
    }

    const upload = (caseId: string, token: string, files: { bytes: Buffer; name: string; type?: string }[], field = 'photo') => {
      const form = new FormData();
      for (const f of files) form.append(field, new Blob([f.bytes], { type: f.type ?? 'image/jpeg' }), f.name);
      return fetch(`${base}/api/cases/${caseId}/photos`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
    };
    const get = (url: string, token: string) => fetch(`${base}${url}`, { headers: { authorization: `Bearer ${token}` } });
    const post = (id: string, action: string, token: string, body: Record<string, unknown>) =>
      fetch(`${base}/api/cases/${id}/${action}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    it('takes real JPEG, PNG and WebP bytes in one upload, typed from the bytes, stored once by sha256, shown on the case', async () => {
      const c = await freshCase();
      // The declared types are wrong on purpose: the bytes decide.
      const r = await upload(c.id, tok.crew, [{ bytes: JPEG, name: 'a.png', type: 'image/png' }, { bytes: PNG, name: 'b.jpg' }, { bytes: WEBP, name: 'c.bin', type: 'application/octet-stream' }]);
      expect(r.status, await r.clone().text()).toBe(201);
      const photos = (await body(r)).photos as Photo[];
      expect(photos.map((p) => p.type)).toEqual(['image/jpeg', 'image/png', 'image/webp']);
      for (const p of photos) {
        expect(p).toMatchObject({ url: `/api/photos/${p.id}`, stage: 'upload', flags: [], takenAt: null, lat: null, lon: null, uploadedAt: new Date(clock).toISOString() });
        expect(p.id).toMatch(/^[0-9a-f]{64}$/);
        expect(readFileSync(join(photosDir, p.id.slice(0, 2), p.id)).length).toBe(p.size);
      }
      // The same bytes again: one file, one link.
      expect((await upload(c.id, tok.crew, [{ bytes: JPEG, name: 'again.jpg' }])).status).toBe(201);
      expect(readdirSync(join(photosDir, photos[0].id.slice(0, 2))).filter((f) => f.startsWith(photos[0].id))).toEqual([photos[0].id]);
      const detail = await body(await get(`/api/cases/${c.id}`, tok.operator));
      expect(detail.photos.map((p: Photo) => p.id).sort()).toEqual(photos.map((p) => p.id).sort());
      expect(detail.history.filter((h: { action: string }) => h.action === 'photo')).toHaveLength(1);
      const img = await get(photos[0].url, tok.crew);
      expect(img.status).toBe(200);
      expect(img.headers.get('content-type')).toBe('image/jpeg');
      expect(img.headers.get('x-content-type-options')).toBe('nosniff');
      expect(img.headers.get('cache-control')).toMatch(/^private/);
      expect(Buffer.from(await img.arrayBuffer()).equals(JPEG)).toBe(true);
    });

    it('refuses a text file named .jpg (415 CS_CLOUD_PHOTO_TYPE) and a photo over 10 MB (413 CS_CLOUD_PHOTO_TOO_LARGE), storing nothing', async () => {
      const c = await freshCase();
      const text = await upload(c.id, tok.crew, [{ bytes: Buffer.from('this is not a photo\n'.repeat(50)), name: 'site.jpg' }]);
      expect(text.status).toBe(415);
      expect((await body(text)).code).toBe('CS_CLOUD_PHOTO_TYPE');
      const big = Buffer.concat([JPEG.subarray(0, JPEG.length - 2), Buffer.alloc(10 * 1024 * 1024 + 1), Buffer.from([0xff, 0xd9])]);
      const tooBig = await upload(c.id, tok.crew, [{ bytes: big, name: 'huge.jpg' }]);
      expect(tooBig.status).toBe(413);
      expect((await body(tooBig)).code).toBe('CS_CLOUD_PHOTO_TOO_LARGE');
      const wrongField = await upload(c.id, tok.crew, [{ bytes: JPEG, name: 'a.jpg' }], 'file');
      expect(wrongField.status).toBe(400);
      const json = await post(c.id, 'photos', tok.crew, {});
      expect(json.status).toBe(415);
      expect((await body(await get(`/api/cases/${c.id}`, tok.operator))).photos).toEqual([]);
    });

    it('flags a photo taken before the case opened (EXIF DateTimeOriginal) and one whose GPS is far from the asset', async () => {
      const c = await freshCase();
      const before = withExif(JPEG, { dateTimeOriginal: '2026:11:25 09:30:00', offsetTimeOriginal: '+08:00', lat: c.lat + 0.01, lon: c.lon }); // 01:30Z, ~1.1 km north
      // No offset: read in Asia/Shanghai, so 10:30 there is 02:30Z, after the case opened at 02:00Z.
      const after = withExif(JPEG, { dateTimeOriginal: '2026:11:25 10:30:00', lat: c.lat + 0.0005, lon: c.lon }); // ~55 m
      const r = await upload(c.id, tok.crew, [{ bytes: before, name: 'old.jpg' }, { bytes: after, name: 'new.jpg' }]);
      expect(r.status).toBe(201);
      const [old, fresh] = (await body(r)).photos as Photo[];
      expect(old).toMatchObject({ takenAt: '2026-11-25T01:30:00.000Z', flags: ['taken-before-case', 'far-from-asset'] });
      expect(old.lat).toBeCloseTo(c.lat + 0.01, 4);
      expect(fresh).toMatchObject({ takenAt: '2026-11-25T02:30:00.000Z', flags: [] });
      expect(exifInstant('2026:11:25 10:30:00', undefined)).toBe(Date.parse('2026-11-25T02:30:00Z'));
      expect(exifInstant('2026:11:25 10:30:00', '-05:00')).toBe(Date.parse('2026-11-25T15:30:00Z'));
      expect(exifInstant('not a time', '+08:00')).toBeNull();
    });

    it('a crew can neither upload to nor fetch the photos of another unit\'s case (404); others may fetch a photo only while a case holds it', async () => {
      const c = await freshCase();
      const up = await upload(c.id, tok.otherCrew, [{ bytes: PNG, name: 'x.png' }]);
      expect(up.status).toBe(404);
      expect((await body(up)).code).toBe('CS_CLOUD_CASE_NOT_FOUND');
      const marked = withExif(JPEG, { dateTimeOriginal: '2026:11:25 10:40:00' });
      const p = ((await body(await upload(c.id, tok.crew, [{ bytes: marked, name: 'm.jpg' }]))).photos as Photo[])[0];
      const other = await get(p.url, tok.otherCrew);
      expect(other.status).toBe(404);
      expect((await body(other)).code).toBe('CS_CLOUD_PHOTO_NOT_FOUND');
      for (const role of ['crew', 'operator', 'commander', 'verifier', 'admin']) expect((await get(p.url, tok[role])).status, role).toBe(200);
      expect((await get(`/api/photos/${'0'.repeat(64)}`, tok.admin)).status).toBe(404);
      expect((await get('/api/photos/not-a-hash', tok.admin)).status).toBe(400);
      expect((await fetch(`${base}${p.url}`)).status).toBe(401);
    });

    it('handle, note and rework cite photos uploaded to the case; a photo of another case, or on another action, is 400', async () => {
      const c = await freshCase();
      const d = await freshCase();
      const mine = ((await body(await upload(c.id, tok.crew, [{ bytes: withExif(JPEG, { dateTimeOriginal: '2026:11:25 10:41:00' }), name: 'c.jpg' }]))).photos as Photo[])[0];
      const theirs = ((await body(await upload(d.id, tok.crew, [{ bytes: withExif(JPEG, { dateTimeOriginal: '2026:11:25 10:42:00' }), name: 'd.jpg' }]))).photos as Photo[])[0];
      const bad = await post(c.id, 'note', tok.crew, { notes: 'see photo', photos: [theirs.id] });
      expect(bad.status).toBe(400);
      expect((await body(bad)).message).toContain('is not uploaded to case');
      expect((await post(c.id, 'accept', tok.crew, { photos: [mine.id] })).status).toBe(400);
      const noted = await post(c.id, 'note', tok.crew, { notes: 'cover lifted', photos: [mine.id] });
      expect(noted.status).toBe(200);
      const j = await body(noted);
      expect(j.history.at(-1)).toMatchObject({ action: 'note', details: { photos: [mine.id] } });
      expect(j.photos).toEqual([expect.objectContaining({ id: mine.id, stage: 'note' })]);
      expect((await post(c.id, 'accept', tok.crew, {})).status).toBe(200);
      const handled = await post(c.id, 'handle', tok.crew, { notes: 'pumped dry', photos: [mine.id] });
      expect(handled.status).toBe(200);
      expect((await body(handled)).photos[0].stage).toBe('handle');
    });

    it('refuses photos to a closed or a void case (409 CS_CLOUD_PHOTO_CASE_FINAL), adding nothing to it', async () => {
      const voided = await freshCase();
      expect((await post(voided.id, 'void', tok.operator, { reason: 'false alarm: sensor under test' })).status).toBe(200);
      const closed = await freshCase();
      const shot = ((await body(await upload(closed.id, tok.crew, [{ bytes: withExif(JPEG, { dateTimeOriginal: '2026:11:25 10:43:00' }), name: 'h.jpg' }]))).photos as Photo[])[0];
      expect((await post(closed.id, 'accept', tok.crew, {})).status).toBe(200);
      expect((await post(closed.id, 'handle', tok.crew, { notes: 'pumped dry', photos: [shot.id] })).status).toBe(200);
      const start = clock;
      try {
        await cloud.ingest(GW, topics.up(GW, closed.device), reading(closed.device, ++seq, clock, { level_m: 0 }));
        clock += 11 * 60_000; // past the default 10 min back in range (workflow.verifyClearMs)
        await cloud.ingest(GW, topics.up(GW, closed.device), reading(closed.device, ++seq, clock, { level_m: 0 }));
        const verified = await post(closed.id, 'verify', tok.verifier, {});
        expect(verified.status, await verified.clone().text()).toBe(200);
        expect((await body(verified)).state).toBe('closed');
        for (const [c, state] of [[voided, 'void'], [closed, 'closed']] as const) {
          const before = await body(await get(`/api/cases/${c.id}`, tok.operator));
          const r = await upload(c.id, tok.crew, [{ bytes: withExif(JPEG, { dateTimeOriginal: `2026:11:25 10:5${state.length}:00` }), name: 'late.jpg' }]);
          expect(r.status, state).toBe(409);
          const j = await body(r);
          expect(j.code).toBe('CS_CLOUD_PHOTO_CASE_FINAL');
          expect(j.message).toBe(`case ${c.id} is ${state}: photos can no longer be added to it`);
          const after = await body(await get(`/api/cases/${c.id}`, tok.operator));
          expect(after.photos).toEqual(before.photos);
          expect(after.history).toHaveLength(before.history.length);
        }
      } finally {
        clock = start;
      }
    });
  });
});
