import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { createRecheck } from '../../cloud/registry/recheck.ts';
import { createLogger } from '../../lib/log.ts';
import { topics } from '../../lib/topics.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';

/**
 * Two cloud workers on one database, the second never polling the registry in the test's time: a reading
 * for a device another worker changed a moment ago is judged against the database's registry before it is
 * refused (fault guarded: a reading for a device just added on worker 1 landing on worker 2 before its poll
 * was refused as unknown-device and acknowledged, lost; a device just moved, as wrong-gateway).
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const level = { level_m: 0.1, battery_pct: 90 };

describe.each(BACKENDS)('registry changes reaching another worker\'s readings at once on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let one: Cloud;
    let two: Cloud;
    let drop: () => Promise<void>;
    let token: string;
    const call = async (method: string, url: string, payload?: object) => {
      const r = await one.app.inject({ method: method as 'POST', url, payload, headers: { authorization: `Bearer ${token}` } });
      return { status: r.statusCode, body: r.json() };
    };
    const device = (id: string, unitId: number) => ({
      id, profile: 'water-level', name: `Point ${id}`, componentCode: `44040205207${String(unitId).padStart(5, '0')}`, lat: 22.27, lon: 113.56,
      ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-jida-a', unitId,
    });

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      one = await buildCloud({ db: fresh.db, district, profiles, now: () => T0, escalation: false, registry: { pollMs: 0 } });
      two = await buildCloud({ db: fresh.db, district, profiles, now: () => T0, escalation: false, emergency: false, registry: { pollMs: 3_600_000 } });
      await one.start();
      await two.start();
      token = await one.tokens.create('operator');
    });
    afterAll(async () => {
      await two?.stop();
      await one?.stop();
      await drop?.();
    });

    it('stores a reading for a device added on the other worker a moment ago, its poll not yet come', async () => {
      const before = two.registry.version();
      expect((await call('POST', '/api/registry/devices', device('RW-ADDED', 230))).status).toBe(201);
      expect(two.registry.version()).toBe(before); // worker 2 has not polled
      const r = await two.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'RW-ADDED'), reading('RW-ADDED', 1, T0, level));
      expect(r).toMatchObject({ status: 'stored' });
      expect(two.registry.version()).toBe(one.registry.version());
    });

    it('stores a reading from the new gateway of a device moved on the other worker a moment ago', async () => {
      expect((await call('POST', '/api/registry/devices', device('RW-MOVED', 231))).status).toBe(201);
      expect(await two.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'RW-MOVED'), reading('RW-MOVED', 1, T0, level))).toMatchObject({ status: 'stored' });
      expect((await call('POST', '/api/registry/devices/RW-MOVED/move', { bus: 'bus-gongbei-a', unitId: 231 })).status).toBe(200);
      const r = await two.ingest('gw-xz-gongbei', topics.up('gw-xz-gongbei', 'RW-MOVED'), reading('RW-MOVED', 2, T0, level));
      expect(r).toMatchObject({ status: 'stored' });
    });

    it('stores an edge alarm for a manhole cover added on the other worker a moment ago', async () => {
      const mh = { ...device('RW-MH', 232), profile: 'manhole-cover', componentCode: '4404020104000232' };
      expect((await call('POST', '/api/registry/devices', mh)).status).toBe(201);
      const at = new Date(T0).toISOString();
      const alarm = Buffer.from(JSON.stringify({
        seq: 1, ts: at, device: 'RW-MH', rule: 'cover-open', hazard: 'cover-open', severity: 'critical',
        point: 'cover_open', value: true, limit: true, active: true, since: at, historical: false,
      }));
      expect(await two.ingest('gw-xz-jida', topics.alarm('gw-xz-jida', 'RW-MH'), alarm)).toMatchObject({ status: 'stored' });
    });

    it('still refuses a reading for a device nobody registered, after the recheck', async () => {
      const u = await two.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'RW-NOBODY'), reading('RW-NOBODY', 1, T0, level));
      expect(u).toMatchObject({ status: 'rejected', reason: 'unknown-device' });
    });
  });
});

describe('the registry recheck before a refusal', () => {
  const logger = createLogger({ level: 'silent' });

  it('reads the database once for a flood of messages waiting together, and at most once per interval after', async () => {
    let reads = 0;
    let t = 0;
    const recheck = createRecheck({ refresh: async () => { reads++; }, clock: () => t, logger, minIntervalMs: 250 });
    await Promise.all(Array.from({ length: 1000 }, () => recheck()));
    expect(reads).toBe(1);
    t = 100; // within the interval: the next read waits for it, shared by all asking meanwhile
    const started = performance.now();
    await Promise.all(Array.from({ length: 1000 }, () => recheck()));
    expect(reads).toBe(2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('answers after a read that started after the message asked, never an earlier one in flight', async () => {
    const starts: number[] = [];
    let release!: () => void;
    let t = 1000;
    const recheck = createRecheck({
      refresh: () => { starts.push(t); return starts.length === 1 ? new Promise<void>((res) => { release = res; }) : Promise.resolve(); },
      clock: () => t, logger, minIntervalMs: 0,
    });
    const first = recheck();
    await new Promise((res) => setImmediate(res));
    t = 2000;
    const second = recheck(); // the first read is in flight: this one needs its own
    release();
    await Promise.all([first, second]);
    expect(starts).toEqual([1000, 2000]);
  });

  it('a failed read does not fail the message (it is judged on the registry it has)', async () => {
    const recheck = createRecheck({ refresh: async () => { throw new Error('database gone'); }, logger });
    await expect(recheck()).resolves.toBeUndefined();
  });
});
