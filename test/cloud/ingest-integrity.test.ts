import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud, type CloudOptions, type DbOptions } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { createMigrator } from '../../cloud/db/migrations.ts';
import { BACKENDS, district, freshDatabase, profiles, type Backend } from './fixtures.ts';

/**
 * Nothing lost, nothing forged (issue #10, findings 1, 2, 6, 10): the readings key names the edge's
 * stream, a repeated key with other values is a logged conflict, ts must be a plausible instant,
 * values must be points of the profile with their type, and one gateway's bad input cannot flood the log.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const MIN = 60_000;
const WL = { gw: 'gw-xz-jida', id: 'XZ-WL-001' };
const WL2 = { gw: 'gw-xz-jida', id: 'XZ-WL-002' };
const UP = topics.up(WL.gw, WL.id);

function body(device: string, seq: number, values: Record<string, unknown>, extra: Record<string, unknown> = {}): Buffer {
  const ts = extra.ts ?? new Date(T0 + seq * 1000).toISOString();
  return Buffer.from(JSON.stringify({ seq, ts, device, values, quality: 'good', historical: false, ...extra }));
}

interface LogLine { level: number; msg: string; [k: string]: unknown }

describe.each(BACKENDS)('ingest integrity on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let main: DbOptions;
    let clock: number;
    let cloud: Cloud;
    let lines: LogLine[];
    const open: Cloud[] = [];
    let drop: () => Promise<void>;

    async function newCloud(extra: Partial<CloudOptions> = {}): Promise<Cloud> {
      const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as LogLine); } });
      const c = await buildCloud({ db: main, district, profiles, now: () => clock, escalation: false, emergency: false, logger, ...extra });
      open.push(c);
      await c.start();
      return c;
    }

    beforeEach(async () => {
      const fresh = await freshDatabase(backend);
      main = fresh.db;
      drop = fresh.drop;
      clock = T0;
      lines = [];
    });

    afterEach(async () => {
      for (const c of open.splice(0)) await c.stop();
      await drop();
    });

    async function query<T>(fn: (db: ReturnType<typeof openDatabase>['db']) => Promise<T>): Promise<T> {
      const db = openDatabase(main);
      try {
        return await fn(db.db);
      } finally {
        await db.close();
      }
    }
    const latest = async (device: string) => (await cloud.app.inject({
      url: `/api/devices/${device}`, headers: { authorization: `Bearer ${await cloud.tokens.create('operator')}` },
    })).json().latest as { ts: string; values: Record<string, unknown> } | null;

    // ---- finding 1: idempotency that survives a new edge ----------------------------------

    it('a reading of a re-installed edge (seq from 1 again, a new stream) is stored, not dropped as a duplicate', async () => {
      cloud = await newCloud();
      for (let seq = 1; seq <= 3; seq++) expect((await cloud.ingest(WL.gw, UP, body(WL.id, seq, { level_m: 0.02 }, { stream: 'old0box0000000a' }))).status).toBe('stored');
      // The new box starts again at 1 with its own stream, and its first reading is a flood.
      const r = await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.93 }, { stream: 'new0box0000000b', ts: new Date(T0 + 10_000).toISOString() }));
      expect(r).toMatchObject({ status: 'stored', cases: [{ action: 'opened', hazard: 'waterlogging' }] });
      expect(cloud.stats()).toMatchObject({ stored: 4, duplicates: 0, conflicts: 0 });
      expect(await query((db) => db.selectFrom('readings').select(['stream', 'seq']).where('seq', '=', 1).orderBy('stream').execute()))
        .toEqual([{ stream: 'new0box0000000b', seq: 1 }, { stream: 'old0box0000000a', seq: 1 }]);
    });

    it('a reading of another device that reuses a seq of the same gateway is stored, not dropped as a duplicate', async () => {
      cloud = await newCloud();
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 5, { level_m: 0.02 }))).status).toBe('stored');
      const other = await cloud.ingest(WL2.gw, topics.up(WL2.gw, WL2.id), body(WL2.id, 5, { level_m: 0.04 }));
      expect(other).toMatchObject({ status: 'stored', device: WL2.id });
      expect(cloud.stats()).toMatchObject({ stored: 2, duplicates: 0, conflicts: 0 });
    });

    it('a repeated key with different values is a conflict, counted and logged at warning with both hashes, not a silent duplicate', async () => {
      cloud = await newCloud();
      const first = body(WL.id, 9, { level_m: 0.02 }, { stream: 'abc' });
      expect((await cloud.ingest(WL.gw, UP, first)).status).toBe('stored');
      // A redelivery (even one replayed as historical) is a plain duplicate.
      expect((await cloud.ingest(WL.gw, UP, first)).status).toBe('duplicate');
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 9, { level_m: 0.02 }, { stream: 'abc', historical: true }))).status).toBe('duplicate');
      const clash = await cloud.ingest(WL.gw, UP, body(WL.id, 9, { level_m: 0.66 }, { stream: 'abc' }));
      expect(clash).toMatchObject({ status: 'conflict', stream: 'abc', seq: 9 });
      const { storedHash, hash } = clash as { storedHash: string; hash: string };
      expect(storedHash).not.toBe(hash);
      expect(cloud.stats()).toMatchObject({ stored: 1, duplicates: 2, conflicts: 1 });
      // Counted in a metric: GET /metrics (Prometheus text) for admin and operator, not for a crew or without a token.
      const scrape = await cloud.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${await cloud.tokens.create('operator')}` } });
      expect(scrape.statusCode).toBe(200);
      expect(scrape.headers['content-type']).toMatch(/^text\/plain/);
      expect(scrape.body).toMatch(/^cs_cloud_reading_conflicts_total 1$/m);
      expect(scrape.body).toMatch(/^cs_cloud_readings_total\{outcome="duplicate"\} 2$/m);
      expect((await cloud.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${await cloud.tokens.create('crew', 'xz-drainage')}` } })).json())
        .toMatchObject({ statusCode: 403, code: 'CS_CLOUD_FORBIDDEN' });
      expect((await cloud.app.inject({ url: '/metrics' })).statusCode).toBe(401);
      const warning = lines.find((l) => l.level === 40 && /conflicting reading/.test(l.msg));
      expect(warning).toMatchObject({ gateway: WL.gw, device: WL.id, seq: 9, stream: 'abc', storedHash, hash });
      // The first copy is kept.
      expect(await query((db) => db.selectFrom('readings').select('values_json').execute())).toEqual([{ values_json: '{"level_m":0.02}' }]);
    });

    it('readings stored before streams existed keep their key: a replay of one is a duplicate, and an edge without stream keeps working', async () => {
      // A database at migration 0003 with a reading in it, as an installed cloud has.
      await query(async (db) => {
        const { error } = await createMigrator(db).migrateTo('0003_emergency');
        if (error) throw error;
        await db.insertInto('readings').values({ gateway: WL.gw, seq: 1, device: WL.id, ts: T0 + 1000, received_at: T0, values_json: '{"level_m":0.02}', quality: 'good', historical: 0 } as never).execute();
      });
      cloud = await newCloud();
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02 }))).status).toBe('duplicate');
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 2, { level_m: 0.03 }))).status).toBe('stored');
      expect(await query((db) => db.selectFrom('readings').select(['stream', 'seq']).orderBy('seq').execute())).toEqual([{ stream: '', seq: 1 }, { stream: '', seq: 2 }]);
    });

    // ---- finding 2: plausible time --------------------------------------------------------

    it('a reading dated 9999-12-31 is rejected and does not become the device latest value', async () => {
      cloud = await newCloud();
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02 }))).status).toBe('stored');
      const r = await cloud.ingest(WL.gw, UP, body(WL.id, 2, { level_m: 0.5 }, { ts: '9999-12-31T23:59:59Z' }));
      expect(r).toMatchObject({ status: 'rejected', reason: 'ts-future' });
      expect((r as { message: string }).message).toMatch(/9999-12-31T23:59:59Z.*ahead of the cloud's clock/);
      // The next ordinary reading still becomes latest.
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 3, { level_m: 0.03 }))).status).toBe('stored');
      expect(await latest(WL.id)).toMatchObject({ values: { level_m: 0.03 } });
    });

    it('accepts a clock up to the configured skew ahead, rejects beyond it and rejects readings older than the configured max age', async () => {
      cloud = await newCloud({ readings: { maxSkewMs: 2 * MIN, maxAgeMs: 60 * MIN } });
      const at = (ms: number) => new Date(ms).toISOString();
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02 }, { ts: at(T0 + 2 * MIN) }))).status).toBe('stored');
      expect(await cloud.ingest(WL.gw, UP, body(WL.id, 2, { level_m: 0.02 }, { ts: at(T0 + 2 * MIN + 1) }))).toMatchObject({ status: 'rejected', reason: 'ts-future' });
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 3, { level_m: 0.02 }, { ts: at(T0 - 60 * MIN), historical: true }))).status).toBe('stored');
      const old = await cloud.ingest(WL.gw, UP, body(WL.id, 4, { level_m: 0.02 }, { ts: at(T0 - 60 * MIN - 1), historical: true }));
      expect(old).toMatchObject({ status: 'rejected', reason: 'ts-too-old' });
      expect(cloud.stats().rejected).toEqual({ 'ts-future': 1, 'ts-too-old': 1 });
    });

    it('impossible dates (2026-02-30, year 0000) are rejected as invalid', async () => {
      cloud = await newCloud();
      for (const ts of ['2026-02-30T01:00:00Z', '0000-01-01T00:00:00Z', '2026-11-25T24:00:00Z']) {
        const r = await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02 }, { ts }));
        expect(r, ts).toMatchObject({ status: 'rejected', reason: 'invalid' });
        expect((r as { message: string }).message).toMatch(/ts/);
      }
      expect(await query((db) => db.selectFrom('readings').selectAll().execute())).toEqual([]);
    });

    it('a device whose latest reading is already in the future (stored before ts was checked) is repaired at start', async () => {
      cloud = await newCloud();
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02 }))).status).toBe('stored');
      expect((await cloud.ingest(WL2.gw, topics.up(WL2.gw, WL2.id), body(WL2.id, 2, { level_m: 0.03 }))).status).toBe('stored');
      await cloud.stop();
      // What b5f03fd let in: a reading of 9999 as latest, and a device known only by one.
      const future = Date.parse('9999-12-31T23:59:59Z');
      await query(async (db) => {
        await db.insertInto('readings').values({ gateway: WL.gw, stream: '', seq: 3, device: WL.id, ts: future, received_at: T0, values_json: '{"level_m":0.5}', quality: 'good', historical: 0 }).execute();
        await db.updateTable('device_state').set({ last_ts: future, last_seq: 3, last_values: '{"level_m":0.5}' }).where('device', '=', WL.id).execute();
        await db.updateTable('device_state').set({ last_ts: future }).where('device', '=', WL2.id).execute();
        await db.deleteFrom('readings').where('device', '=', WL2.id).execute();
      });
      cloud = await newCloud();
      expect(await latest(WL.id)).toMatchObject({ ts: new Date(T0 + 1000).toISOString(), values: { level_m: 0.02 } });
      expect(await latest(WL2.id)).toBeNull();
      expect(lines.filter((l) => l.level === 40 && /repaired/.test(l.msg)).map((l) => l.device).sort()).toEqual([WL.id, WL2.id]);
      // And it moves on with the next reading.
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 4, { level_m: 0.04 }))).status).toBe('stored');
      expect(await latest(WL.id)).toMatchObject({ values: { level_m: 0.04 } });
    });

    // ---- finding 6: strict readings -------------------------------------------------------

    it('a value under a point name the profile does not declare is rejected with the name, not stored and shown', async () => {
      cloud = await newCloud();
      const r = await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 0.02, zz_injected: '<script>alert(1)</script>' }));
      expect(r).toMatchObject({ status: 'rejected', reason: 'unknown-point' });
      expect((r as { message: string }).message).toMatch(/"zz_injected"/);
      expect(await latest(WL.id)).toBeNull();
    });

    it('a value of the wrong type for its point is rejected (a string for a number, a number for a bit)', async () => {
      cloud = await newCloud();
      const r = await cloud.ingest(WL.gw, UP, body(WL.id, 1, { level_m: 'high' }));
      expect(r).toMatchObject({ status: 'rejected', reason: 'point-type' });
      expect((r as { message: string }).message).toMatch(/level_m must be a number/);
      const mh = profiles.get('manhole-cover')!;
      const bit = mh.points.find((p) => p.type === 'bits')!;
      const MH = { gw: 'gw-xz-gongbei', id: 'XZ-MH-001' };
      const b = await cloud.ingest(MH.gw, topics.up(MH.gw, MH.id), body(MH.id, 1, { [bit.key]: 1 }));
      expect(b).toMatchObject({ status: 'rejected', reason: 'point-type' });
      expect((await cloud.ingest(MH.gw, topics.up(MH.gw, MH.id), body(MH.id, 2, { [bit.key]: true }))).status).toBe('stored');
    });

    it('a seq of 1e300 or 2^63 is rejected (not stored as REAL where two collide)', async () => {
      cloud = await newCloud();
      for (const seq of ['1e300', '9223372036854775808', '9007199254740992']) {
        const raw = Buffer.from(`{"seq":${seq},"ts":"${new Date(T0).toISOString()}","device":"${WL.id}","values":{"level_m":0.02}}`);
        const r = await cloud.ingest(WL.gw, UP, raw);
        expect(r, seq).toMatchObject({ status: 'rejected', reason: 'invalid' });
        expect((r as { message: string }).message).toMatch(/seq/);
      }
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, Number.MAX_SAFE_INTEGER, { level_m: 0.02 }, { ts: new Date(T0).toISOString() }))).status).toBe('stored');
    });

    it('a reading nested thousands deep is rejected as invalid, not failed and left unacknowledged to come back forever', async () => {
      cloud = await newCloud();
      const deep = Buffer.from(`{"seq":1,"ts":"${new Date(T0).toISOString()}","device":"${WL.id}","values":{"level_m":${'['.repeat(5000)}${']'.repeat(5000)}}}`);
      const r = await cloud.ingest(WL.gw, UP, deep);
      expect(r).toMatchObject({ status: 'rejected', reason: 'invalid' });
      expect(cloud.stats().failed).toBe(0);
      expect((await cloud.ingest(WL.gw, UP, body(WL.id, 2, { level_m: 0.02 }))).status).toBe('stored');
    });

    // ---- finding 10: warnings rate-limited ------------------------------------------------

    it('one gateway flooding bad readings writes a bounded number of warning lines and a count of the suppressed rest', async () => {
      cloud = await newCloud({ warnLimit: { windowMs: 60_000, max: 5 } });
      for (let i = 0; i < 200; i++) await cloud.ingest(WL.gw, UP, Buffer.from('not json'));
      // Another gateway's first bad reading is still logged.
      const MH = { gw: 'gw-xz-gongbei', id: 'XZ-MH-001' };
      await cloud.ingest(MH.gw, topics.up(MH.gw, MH.id), Buffer.from('{'));
      expect(cloud.stats()).toMatchObject({ rejected: { 'bad-json': 201 }, warningsSuppressed: 195 });
      const scrape = (await cloud.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${await cloud.tokens.create('admin')}` } })).body;
      expect(scrape).toMatch(/^cs_cloud_readings_rejected_total\{reason="bad-json"\} 201$/m);
      expect(scrape).toMatch(/^cs_cloud_warnings_suppressed_total\{path="readings"\} 195$/m);
      const warnings = () => lines.filter((l) => l.level === 40);
      expect(warnings().filter((l) => l.gateway === WL.gw)).toHaveLength(5);
      expect(warnings().filter((l) => l.gateway === MH.gw)).toHaveLength(1);
      // The window's end (here: stop) logs what was held back.
      await cloud.stop();
      expect(warnings().find((l) => l.suppressed === 195)).toMatchObject({ gateway: WL.gw, msg: expect.stringMatching(/195 more warnings/) });
    });
  });
});
