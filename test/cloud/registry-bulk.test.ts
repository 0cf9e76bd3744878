import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';

/**
 * The registry's bulk import and export (CSV, GeoJSON), its paged and filtered device list, and a change on
 * one cloud worker reaching another on the same database (the registry's version, polled).
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const HEADER = 'id,name,profile,componentCode,lat,lon,address,grid,ownerUnit,maintainerUnit,gateway,bus,unitId,pollMs,scenario';

/** `n` water-level points on the demo's buses, unit ids from 100, every third owned by zh-water. */
function csvOf(n: number, from = 0): string {
  const buses = ['bus-gongbei-a', 'bus-gongbei-b', 'bus-jida-a', 'bus-jida-b'];
  const lines = [HEADER];
  for (let i = from; i < from + n; i++) {
    const bus = buses[i % 4];
    const gw = bus.includes('gongbei') ? 'gw-xz-gongbei' : 'gw-xz-jida';
    lines.push([`BULK-${String(i).padStart(4, '0')}`, `"Bulk point ${i}, Jida"`, 'water-level', `4404020520${String(800000 + i)}`, 22.25 + i / 1e4, 113.55, `"路 ${i}号"`, '',
      i % 3 === 0 ? 'zh-water' : 'xz-drainage', 'iot-ops', gw, bus, 100 + Math.floor(i / 4), '', ''].join(','));
  }
  return `${lines.join('\n')}\n`;
}

describe.each(BACKENDS)('registry bulk import, export and list on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let other: Cloud;
    let drop: () => Promise<void>;
    const tok: Record<string, string> = {};

    const call = async (method: string, url: string, payload?: string | object, type?: string, c = cloud) => {
      const r = await c.app.inject({
        method: method as 'GET', url, payload: payload as string,
        headers: { authorization: `Bearer ${tok.operator}`, ...(type ? { 'content-type': type } : {}) },
      });
      return { status: r.statusCode, body: r.headers['content-type']?.toString().includes('json') && !r.headers['content-type']?.toString().includes('geo') ? r.json() : r.body as any };
    };
    const ids = (r: { body: { items: { id: string }[] } }) => r.body.items.map((d) => d.id);

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({ db: fresh.db, district, profiles, now: () => T0, escalation: false, registry: { pollMs: 0 } });
      // A second worker on the same database, polling the registry's version every 50 ms.
      other = await buildCloud({ db: fresh.db, district, profiles, now: () => T0, escalation: false, emergency: false, registry: { pollMs: 50 } });
      await cloud.start();
      await other.start();
      tok.operator = await cloud.tokens.create('operator');
    });
    afterAll(async () => {
      await other?.stop();
      await cloud?.stop();
      await drop?.();
    });

    it('refuses a file with a bad row whole, naming the line and the column, and applies nothing', async () => {
      const before = cloud.registry.version();
      const rows = csvOf(5).split('\n');
      rows[3] = rows[3].replace('bus-jida-a', 'bus-nowhere'); // line 4
      rows[5] = rows[5].replace('22.2504', '95'); // line 6: latitude out of range
      const r = await call('POST', '/api/registry/devices/import', rows.join('\n'), 'text/csv');
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('CS_CLOUD_REGISTRY_IMPORT_INVALID');
      expect(r.body.message).toMatch(/line 6, column lat: /);
      const r2 = await call('POST', '/api/registry/devices/import', rows.slice(0, 5).join('\n'), 'text/csv');
      expect(r2.body.message).toMatch(/line 4, column bus: unknown bus "bus-nowhere"/);
      const unknownCol = await call('POST', '/api/registry/devices/import', 'id,colour\nX,red\n', 'text/csv');
      expect(unknownCol.body.message).toMatch(/line 1, column colour: unknown column/);
      expect(cloud.registry.version()).toBe(before);
      expect((await call('GET', '/api/registry/devices?q=bulk')).body.items).toEqual([]);
    });

    it('imports a CSV in one change, then exports it and imports the export again unchanged', async () => {
      const r = await call('POST', '/api/registry/devices/import', csvOf(60), 'text/csv');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ created: 60, updated: 0, unchanged: 0 });
      const csv = await call('GET', '/api/registry/devices/export?format=csv&q=bulk');
      expect(csv.status).toBe(200);
      const lines = (csv.body as string).trim().split('\r\n');
      expect(lines[0]).toBe(HEADER);
      expect(lines).toHaveLength(61);
      expect(lines[1]).toBe('BULK-0000,"Bulk point 0, Jida",water-level,4404020520800000,22.25,113.55,路 0号,,zh-water,iot-ops,gw-xz-gongbei,bus-gongbei-a,100,,');
      const again = await call('POST', '/api/registry/devices/import', csv.body, 'text/csv');
      expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 60 });
    });

    it('exports GeoJSON Point features and takes them back, a changed property as an update', async () => {
      const geo = await call('GET', '/api/registry/devices/export?format=geojson&q=bulk-000');
      const fc = JSON.parse(geo.body);
      expect(fc.type).toBe('FeatureCollection');
      expect(fc.features).toHaveLength(10);
      expect(fc.features[1]).toMatchObject({
        type: 'Feature', geometry: { type: 'Point', coordinates: [113.55, 22.2501] },
        properties: { id: 'BULK-0001', componentCode: '4404020520800001', ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', profile: 'water-level', bus: 'bus-gongbei-b', unitId: 100, gateway: 'gw-xz-gongbei' },
      });
      fc.features[1].geometry.coordinates = [113.6, 22.3];
      const back = await call('POST', '/api/registry/devices/import', JSON.stringify(fc), 'application/geo+json');
      expect(back.body).toMatchObject({ created: 0, updated: 1, unchanged: 9 });
      expect((await call('GET', '/api/registry/devices/BULK-0001')).body).toMatchObject({ lat: 22.3, lon: 113.6 });
      fc.features[2].geometry = { type: 'LineString', coordinates: [] };
      const bad = await call('POST', '/api/registry/devices/import', JSON.stringify(fc), 'application/geo+json');
      expect(bad.body.message).toMatch(/feature 3, column geometry: /);
    });

    it('pages the list by cursor and filters it by q, gateway, unit, district, profile and status', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await call('GET', `/api/registry/devices?q=bulk&limit=7${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.body.items.length).toBeLessThanOrEqual(7);
        seen.push(...ids(page));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(seen).toHaveLength(60);
      expect([...seen].sort()).toEqual(seen);
      const jida = ids(await call('GET', '/api/registry/devices?q=bulk&gateway=gw-xz-jida&limit=1000'));
      expect(jida).toHaveLength(30);
      const water = ids(await call('GET', '/api/registry/devices?q=bulk&unit=zh-water&limit=1000'));
      expect(water).toHaveLength(20);
      expect(ids(await call('GET', '/api/registry/devices?unit=zh-water&gateway=gw-xz-jida&profile=water-level&district=440402&limit=1000'))).toEqual(water.filter((id) => jida.includes(id)));
      expect(ids(await call('GET', '/api/registry/devices?q=%E8%B7%AF%2042%E5%8F%B7'))).toEqual(['BULK-0042']); // "路 42号": the address
      expect(ids(await call('GET', '/api/registry/devices?q=100%25'))).toEqual([]); // a % is a character, not a wildcard
      expect(ids(await call('GET', '/api/registry/devices?district=440499'))).toEqual([]);
      await call('POST', '/api/registry/devices/BULK-0003/retire');
      expect(ids(await call('GET', '/api/registry/devices?status=retired'))).toEqual(['BULK-0003']);
      expect(ids(await call('GET', '/api/registry/devices?q=bulk-000&status=any'))).toHaveLength(10);
      expect(ids(await call('GET', '/api/registry/devices?q=bulk-000'))).toHaveLength(9);
      expect((await call('GET', '/api/registry/devices?cursor=%%%')).body.code).toBe('CS_CLOUD_BAD_CURSOR');
      // The operator's device list pages the same way.
      const page1 = await call('GET', '/api/devices?q=bulk&limit=25');
      expect(page1.body.items).toHaveLength(25);
      const page2 = await call('GET', `/api/devices?q=bulk&limit=50&cursor=${page1.body.nextCursor}`);
      expect(page2.body.items).toHaveLength(34);
      expect(page2.body.nextCursor).toBeNull();
      expect(ids(await call('GET', '/api/devices?gateway=gw-xz-gongbei&q=bulk&limit=100'))).toHaveLength(30);
    });

    it('reaches the other worker: a device added on one is accepted by the other within its poll, and its listeners told', async () => {
      const caughtUp = async () => {
        for (let i = 0; i < 200 && other.registry.version() !== cloud.registry.version(); i++) await new Promise((res) => setTimeout(res, 10));
        expect(other.registry.version()).toBe(cloud.registry.version());
      };
      await caughtUp();
      const told: string[][] = [];
      other.registry.onChange((c) => told.push(c.gateways));
      const r = await call('POST', '/api/registry/devices', {
        id: 'REG-CLUSTER-1', profile: 'water-level', name: 'Cluster point', componentCode: '4404020520700001', lat: 22.27, lon: 113.56,
        ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-jida-a', unitId: 240,
      }, 'application/json');
      expect(r.status).toBe(201);
      await caughtUp();
      expect(told).toEqual([['gw-xz-jida']]);
      const res = await other.ingest('gw-xz-jida', topics.up('gw-xz-jida', 'REG-CLUSTER-1'), reading('REG-CLUSTER-1', 1, T0, { level_m: 0.1, battery_pct: 90 }));
      expect(res).toMatchObject({ status: 'stored' });
      // A change made on the other worker is judged against the registry as the database has it.
      const clash = await call('POST', '/api/registry/devices', {
        id: 'REG-CLUSTER-2', profile: 'water-level', name: 'Cluster point 2', componentCode: '4404020520700002', lat: 22.27, lon: 113.56,
        ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-jida-a', unitId: 240,
      }, 'application/json', other);
      expect(clash.body.message).toMatch(/unit id 240 is already used on bus bus-jida-a by device REG-CLUSTER-1/);
    });

    it('reads a quoted field holding a comma and a line break (BOM, CRLF and LF), counting lines past it; refuses an unclosed quote naming its line', async () => {
      const row = (id: string, unit: number, { lat = '22.27', address = '', name = 'Quoted point' } = {}) =>
        [id, name, 'water-level', `4404020520710${unit}`, lat, '113.56', address, '', 'xz-drainage', 'iot-ops', 'gw-xz-jida', 'bus-jida-b', unit, '', ''].join(',');
      const address = '1 Jida Road, block B\r\nsecond gate "east"';
      const quoted = `"${address.replaceAll('"', '""')}"`;
      const post = (text: string) => call('POST', '/api/registry/devices/import', text, 'text/csv');
      // Lines: 1 header, 2-3 CSVQ-1 (its address spans two), 4 CSVQ-2 with a latitude out of range.
      const bad = await post(`\ufeff${[HEADER, row('CSVQ-1', 230, { address: quoted }), row('CSVQ-2', 231, { lat: '95' })].join('\r\n')}\r\n`);
      expect(bad.status).toBe(400);
      expect(bad.body.message).toMatch(/^import refused, nothing applied: line 4, column lat: /);
      // Lines: 1 header, 2-3 CSVQ-1, 4 empty, 5 CSVQ-2 whose quote is never closed.
      const unclosed = await post([HEADER, row('CSVQ-1', 230, { address: quoted }), '', row('CSVQ-2', 231, { address: '"no end' }), row('CSVQ-3', 232)].join('\n'));
      expect(unclosed.status).toBe(400);
      expect(unclosed.body.code).toBe('CS_CLOUD_REGISTRY_IMPORT_INVALID');
      expect(unclosed.body.message).toBe('import refused, nothing applied: line 5, column address: a quoted field is not closed');
      const stray = await post([HEADER, row('CSVQ-1', 230, { address: quoted }), row('CSVQ-2', 231, { name: 'a "quoted" name' })].join('\n'));
      expect(stray.body.message).toBe('import refused, nothing applied: line 4, column name: a quote inside an unquoted field');
      expect(ids(await call('GET', '/api/registry/devices?q=csvq'))).toEqual([]);

      const ok = await post(`\ufeff${HEADER}\r\n${row('CSVQ-1', 230, { address: quoted })}\r\n${row('CSVQ-2', 231)}\n`);
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      expect(ok.body).toMatchObject({ created: 2 });
      expect((await call('GET', '/api/registry/devices/CSVQ-1')).body.address).toBe(address);
      const csv = (await call('GET', '/api/registry/devices/export?format=csv&q=csvq')).body as string;
      expect(csv).toBe(`${HEADER}\r\n${row('CSVQ-1', 230, { address: quoted })}\r\n${row('CSVQ-2', 231)}\r\n`);
      expect((await post(csv)).body).toMatchObject({ created: 0, updated: 0, unchanged: 2 });
    });
  });
});
