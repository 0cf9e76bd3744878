import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../lib/topics.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { BACKENDS, district, freshDatabase, profiles, reading, type Backend } from './fixtures.ts';

/**
 * The device registry in the database (README "Device registry"): seeded from the district YAML, changed
 * through the API while the cloud runs (a device added is accepted on its next reading, a moved device's next
 * case goes to its new unit, a retired one's readings are refused while its history stays readable), a
 * gateway's creation calling the provisioning hook, and a change on one worker reaching another.
 */

const T0 = Date.parse('2026-11-25T02:00:00Z');
const HOUR = 3_600_000;

const newDevice = (id: string, extra: Record<string, unknown> = {}) => ({
  id, profile: 'water-level', name: `Water level ${id}`, componentCode: `44040205200${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`,
  lat: 22.27, lon: 113.56, ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-jida-b', unitId: 200, ...extra,
});

describe.each(BACKENDS)('device registry on $backend', ({ backend, skip }: { backend: Backend; skip: boolean }) => {
  describe.skipIf(skip)(backend, () => {
    let cloud: Cloud;
    let drop: () => Promise<void>;
    let clock = T0;
    let seq = 1;
    const provisioned: string[] = [];
    const tok: Record<string, string> = {};

    const call = async (method: string, url: string, who: string | null = 'operator', payload?: unknown, headers: Record<string, string> = {}) => {
      const r = await cloud.app.inject({
        method: method as 'GET', url, payload: payload as string,
        headers: { ...(who ? { authorization: `Bearer ${tok[who]}` } : {}), ...headers },
      });
      return { status: r.statusCode, body: r.headers['content-type']?.toString().includes('json') ? r.json() : r.body as any, raw: r.body };
    };
    const up = (gw: string, device: string, values: Record<string, unknown>) => cloud.ingest(gw, topics.up(gw, device), reading(device, seq++, clock, values));

    beforeAll(async () => {
      const fresh = await freshDatabase(backend);
      drop = fresh.drop;
      cloud = await buildCloud({
        db: fresh.db, district, profiles, now: () => clock, escalation: false,
        registry: {
          pollMs: 0,
          provision: async (gw) => {
            provisioned.push(gw);
            return { credential: { username: gw, password: 'secret-of-the-test' }, edgeConfig: `gateway: ${gw}\n` };
          },
        },
      });
      await cloud.start();
      for (const [name, role, unit] of [['operator', 'operator'], ['admin', 'admin'], ['commander', 'commander'], ['crew', 'crew', 'xz-drainage']] as const) {
        tok[name] = await cloud.tokens.create(role, unit);
      }
    });
    afterAll(async () => {
      await cloud?.stop();
      await drop?.();
    });

    it('is seeded from the district YAML: every device, bus, gateway, unit and the district', async () => {
      const list = await call('GET', '/api/registry/devices?limit=1000');
      expect(list.status).toBe(200);
      expect(list.body.items.map((d: { id: string }) => d.id).sort()).toEqual(district.devices.map((d) => d.id).sort());
      expect(list.body.nextCursor).toBeNull();
      const one = list.body.items.find((d: { id: string }) => d.id === 'XZ-WL-001');
      expect(one).toMatchObject({ gateway: 'gw-xz-jida', district: '440402', retiredAt: null, ownerUnit: 'xz-drainage' });
      expect((await call('GET', '/api/registry/units')).body.items).toHaveLength(district.units.length);
      expect((await call('GET', '/api/registry/buses')).body.items).toHaveLength(district.buses.length);
      expect((await call('GET', '/api/registry/gateways')).body.items.map((g: { id: string }) => g.id).sort()).toEqual(['gw-xz-gongbei', 'gw-xz-jida']);
      expect((await call('GET', '/api/registry/districts')).body.items).toMatchObject([{ county: '440402', retiredAt: null }]);
    });

    it('accepts a created device\'s reading at once, without a restart, and tells listeners its gateway changed', async () => {
      const changes: string[][] = [];
      const off = cloud.registry.onChange((c) => changes.push(c.gateways));
      expect(await up('gw-xz-jida', 'REG-NEW-1', { level_m: 0.1, battery_pct: 90 })).toMatchObject({ status: 'rejected', reason: 'unknown-device' });
      const created = await call('POST', '/api/registry/devices', 'operator', newDevice('REG-NEW-1'));
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toMatchObject({ id: 'REG-NEW-1', gateway: 'gw-xz-jida', retiredAt: null });
      expect(await up('gw-xz-jida', 'REG-NEW-1', { level_m: 0.1, battery_pct: 90 })).toMatchObject({ status: 'stored' });
      expect((await call('GET', '/api/devices/REG-NEW-1')).body).toMatchObject({ id: 'REG-NEW-1', gateway: 'gw-xz-jida', latest: { values: { level_m: 0.1 } } });
      expect(changes).toEqual([['gw-xz-jida']]);
      expect(cloud.registry.gateway('gw-xz-jida')!.devices.map((d) => d.id)).toContain('REG-NEW-1');
      off();
    });

    it('refuses a device whose bus, unit or profile is unknown, or whose unit id is taken on its bus, naming the field', async () => {
      const bad = await call('POST', '/api/registry/devices', 'operator', newDevice('REG-BAD-1', { bus: 'bus-nowhere', ownerUnit: 'no-unit' }));
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('CS_CLOUD_REGISTRY_INVALID');
      expect(bad.body.message).toMatch(/ownerUnit: unknown unit "no-unit"/);
      expect(bad.body.message).toMatch(/bus: unknown bus "bus-nowhere"/);
      const taken = await call('POST', '/api/registry/devices', 'operator', newDevice('REG-BAD-2', { unitId: 200 }));
      expect(taken.status).toBe(400);
      expect(taken.body.message).toMatch(/unitId: unit id 200 is already used on bus bus-jida-b by device REG-NEW-1/);
      expect((await call('POST', '/api/registry/devices', 'operator', newDevice('REG-NEW-1', { unitId: 201 }))).body.code).toBe('CS_CLOUD_REGISTRY_EXISTS');
      expect((await call('GET', '/api/registry/devices/REG-BAD-1')).status).toBe(404);
      const nul = await call('POST', '/api/registry/units', 'operator', { id: 'nul-unit', name: 'a\u0000b' });
      expect(nul.status).toBe(400);
      expect(nul.body.message).toMatch(/unit nul-unit: name: holds a NUL character/);
    });

    it('routes a moved device\'s next case to its new unit (a real breach reading)', async () => {
      await up('gw-xz-jida', 'REG-NEW-1', { level_m: 0.8, battery_pct: 90 });
      const first = (await call('GET', '/api/cases?device=REG-NEW-1')).body.items;
      expect(first).toMatchObject([{ unit: 'xz-drainage' }]);
      const moved = await call('POST', '/api/registry/devices/REG-NEW-1/move', 'operator', { ownerUnit: 'zh-water', bus: 'bus-gongbei-a', unitId: 201, lat: 22.28 });
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
      expect(moved.body).toMatchObject({ ownerUnit: 'zh-water', bus: 'bus-gongbei-a', gateway: 'gw-xz-gongbei', lat: 22.28 });
      // Its old gateway's readings are refused now; its new gateway's accepted.
      expect(await up('gw-xz-jida', 'REG-NEW-1', { level_m: 0.1, battery_pct: 90 })).toMatchObject({ status: 'rejected', reason: 'wrong-gateway' });
      expect(await up('gw-xz-gongbei', 'REG-NEW-1', { level_m: 0.1, battery_pct: 90 })).toMatchObject({ status: 'stored' });
      // The first case is voided once the level is back (no quiet time), and the level rises again.
      expect((await call('POST', `/api/cases/${first[0].id}/void`, 'operator', { reason: 'the device moved' })).status).toBe(200);
      clock += HOUR;
      expect(await up('gw-xz-gongbei', 'REG-NEW-1', { level_m: 0.8, battery_pct: 90 })).toMatchObject({ status: 'stored', cases: [{ action: 'opened' }] });
      const open = (await call('GET', '/api/cases?device=REG-NEW-1')).body.items.filter((c: { state: string }) => c.state !== 'void');
      expect(open).toMatchObject([{ unit: 'zh-water' }]);
    });

    it('refuses a retired device\'s readings with retired-device, and keeps its device, readings and cases readable', async () => {
      const retired = await call('POST', '/api/registry/devices/REG-NEW-1/retire', 'operator');
      expect(retired.status).toBe(200);
      expect(retired.body.retiredAt).toBe(new Date(clock).toISOString());
      expect(await up('gw-xz-gongbei', 'REG-NEW-1', { level_m: 0.1, battery_pct: 90 })).toMatchObject({ status: 'rejected', reason: 'retired-device' });
      expect(cloud.stats().rejected['retired-device']).toBe(1);
      const dev = await call('GET', '/api/devices/REG-NEW-1');
      expect(dev.status).toBe(200);
      expect(dev.body.retiredAt).toBe(new Date(clock).toISOString());
      expect((await call('GET', '/api/devices/REG-NEW-1/readings')).body.items.length).toBeGreaterThanOrEqual(4);
      expect((await call('GET', '/api/cases?device=REG-NEW-1')).body.items).toHaveLength(2);
      expect((await call('GET', '/api/devices')).body.items.map((d: { id: string }) => d.id)).not.toContain('REG-NEW-1');
      expect((await call('GET', '/api/devices?retired=true')).body.items.map((d: { id: string }) => d.id)).toEqual(['REG-NEW-1']);
      expect((await call('GET', '/api/registry/devices?retired=true')).body.items.map((d: { id: string }) => d.id)).toEqual(['REG-NEW-1']);
      expect((await call('PATCH', '/api/registry/devices/REG-NEW-1', 'operator', { name: 'x' })).body.code).toBe('CS_CLOUD_REGISTRY_RETIRED');
      // Its Modbus slot is free again; its id stays taken.
      expect((await call('POST', '/api/registry/devices', 'operator', newDevice('REG-NEW-2', { bus: 'bus-gongbei-a', unitId: 201 }))).status).toBe(201);
      expect((await call('POST', '/api/registry/devices', 'operator', newDevice('REG-NEW-1', { unitId: 202 }))).body.message).toMatch(/retired/);
    });

    it('creates a gateway through the provisioning hook, then a bus and a unit; refuses to retire what is still in use', async () => {
      const gw = await call('POST', '/api/registry/gateways', 'admin', { id: 'gw-xz-new', name: 'New gateway' });
      expect(gw.status, JSON.stringify(gw.body)).toBe(201);
      expect(gw.body).toMatchObject({ gateway: { id: 'gw-xz-new', buses: 0, devices: 0 }, credential: { username: 'gw-xz-new' }, edgeConfig: 'gateway: gw-xz-new\n' });
      expect(provisioned).toEqual(['gw-xz-new']);
      expect((await call('POST', '/api/registry/buses', 'operator', { id: 'bus-new-a', gateway: 'gw-xz-new', port: 1502 })).body).toMatchObject({ host: '127.0.0.1', timeoutMs: 1000 });
      expect((await call('POST', '/api/registry/units', 'operator', { id: 'xz-new-unit', name: 'New unit' })).status).toBe(201);
      // Regression: the evaluation listed the units it was registered with; a unit added later was missing.
      const evaluation = await call('GET', '/api/evaluation?by=unit', 'operator');
      expect(evaluation.body.groups.find((g: { key: string }) => g.key === 'xz-new-unit')).toMatchObject({ name: 'New unit' });
      expect((await call('POST', '/api/registry/devices', 'operator', newDevice('REG-GW-1', { bus: 'bus-new-a', unitId: 1, ownerUnit: 'xz-new-unit' }))).status).toBe(201);
      expect(cloud.registry.gateway('gw-xz-new')).toMatchObject({ buses: [{ id: 'bus-new-a' }], devices: [{ id: 'REG-GW-1' }] });
      expect((await call('GET', '/api/registry/gateways/gw-xz-new/config')).body).toMatchObject({ gateway: { id: 'gw-xz-new' }, devices: [{ id: 'REG-GW-1' }] });
      const busy = await call('POST', '/api/registry/buses/bus-new-a/retire', 'operator');
      expect(busy.status).toBe(400);
      expect(busy.body.message).toMatch(/still has device REG-GW-1/);
      expect((await call('POST', '/api/registry/units/xz-new-unit/retire', 'operator')).body.message).toMatch(/still owns or maintains device REG-GW-1/);
      expect((await call('POST', '/api/registry/gateways/gw-xz-new/retire', 'operator')).body.message).toMatch(/still has bus bus-new-a/);
      expect((await call('POST', '/api/registry/devices/REG-GW-1/retire', 'operator')).status).toBe(200);
      expect((await call('POST', '/api/registry/buses/bus-new-a/retire', 'operator')).status).toBe(200);
      expect((await call('POST', '/api/registry/gateways/gw-xz-new/retire', 'operator')).status).toBe(200);
      expect(cloud.registry.gateway('gw-xz-new')).toBeUndefined();
    });

    it('lets admins and operators change the registry; others read devices; anonymous callers nothing', async () => {
      expect((await call('POST', '/api/registry/devices', 'crew', newDevice('REG-ACL-1', { unitId: 210 }))).status).toBe(403);
      expect((await call('POST', '/api/registry/devices', 'commander', newDevice('REG-ACL-1', { unitId: 210 }))).status).toBe(403);
      expect((await call('POST', '/api/registry/devices', null, newDevice('REG-ACL-1', { unitId: 210 }))).status).toBe(401);
      expect((await call('GET', '/api/registry/devices', null)).status).toBe(401);
      expect((await call('GET', '/api/registry/devices?limit=1', 'crew')).status).toBe(200);
      expect((await call('GET', '/api/registry/gateways', 'crew')).status).toBe(403);
      expect((await call('GET', '/api/registry/devices/export', 'crew')).status).toBe(403);
      expect((await call('POST', '/api/registry/devices', 'admin', newDevice('REG-ACL-1', { unitId: 210 }))).status).toBe(201);
    });
  });
});
