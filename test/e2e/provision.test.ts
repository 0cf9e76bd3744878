import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildSimulator } from '../../devices/simulator.ts';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService } from '../../gateway/service.ts';
import { loadEdgeConfig } from '../../edge/config.ts';
import { buildEdge } from '../../edge/edge.ts';
import { buildCloud } from '../../cloud/app.ts';
import { buildDemo } from '../../cli/demo.ts';
import { brokerAdminCredentials } from '../../cloud/provision/index.ts';
import { eventually } from '../helpers/process.ts';
import { BACKENDS, district, freshDatabase, profiles } from '../cloud/fixtures.ts';
import { connectMqtt } from '../gateway/helpers.ts';

/**
 * A gateway and its devices added while everything runs (README "Provisioning gateways"): through the
 * registry API a gateway is created (its broker credential works at once, through the broker's admin API),
 * its edge is started from the config file the answer gave, and a device added to it through the API while
 * that edge runs has its readings stored within two poll intervals; retired, the device is no longer polled, and the
 * gateway's credential is revoked with it. Real broker (a separate service with its
 * admin API), real Modbus TCP simulator, real cloud on loopback.
 */

const ADMIN = 'admin-token-0123456789';
const POLL_MS = 1000;
const silent = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A broker with its admin API, a Modbus simulator per level given, and a cloud provisioning through that API. */
async function stack(backend: 'sqlite' | 'postgres', levels: number[] = [0.31]) {
  const dir = mkdtempSync(join(tmpdir(), 'cs-provision-e2e-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const gwData = join(dir, 'broker');
  openCredentialStore(gwData).create('cloud', 'service', 'cloud-password-001');
  const broker = buildGatewayService({
    settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 256 * 1024 }, limits: { drainTimeoutMs: 5000 }, http: { host: '127.0.0.1', port: 0 }, allowAnonymous: false },
    credentials: openCredentialStore(gwData), logger: silent, adminToken: ADMIN,
  });
  const at = await broker.start();
  cleanups.push(() => broker.stop());
  const sims = [];
  for (const level of levels) {
    const sim = buildSimulator({ port: 0, devices: [{ id: 'sim-gauge', profile: profiles.get('water-level')!, unitId: 1 }] });
    await sim.start();
    cleanups.push(() => sim.stop());
    sim.set('sim-gauge', 'level_m', level);
    sims.push(sim);
  }
  const sim = sims[0];

  const { db, drop } = await freshDatabase(backend);
  cleanups.push(drop);
  const cloud = await buildCloud({
    db, district, profiles, logger: silent,
    mqtt: { url: at.mqtt, username: 'cloud', password: 'cloud-password-001' },
    provisioning: {
      credentials: brokerAdminCredentials({ urls: [at.http!], token: ADMIN, logger: silent }),
      edge: { mqtt: { url: at.mqtt }, pollMs: POLL_MS },
    },
  });
  await cloud.start();
  cleanups.push(() => cloud.stop());
  const token = await cloud.tokens.create('admin');
  const api = async (method: 'GET' | 'POST', url: string, payload?: object) => {
    const res = await cloud.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, json: res.json() as Record<string, unknown> & unknown[] };
  };

  /** Creates a gateway through the API and starts its edge from the config file the answer gave. */
  const provisionEdge = async (id: string) => {
    const created = await api('POST', '/api/registry/gateways', { id, name: `cabinet ${id}` });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const file = join(dir, `edge-${id}.yaml`);
    writeFileSync(file, created.json.edgeConfig as string, { mode: 0o600 });
    const edge = buildEdge({ config: loadEdgeConfig(file, profiles), profiles, dataDir: join(dir, `edge-${id}`), reconnectMs: 200 });
    await edge.start();
    cleanups.push(() => edge.stop());
    await eventually(async () => ((await api('GET', '/api/gateways')).json as { id: string; online: boolean }[]).some((g) => g.id === id && g.online));
    return edge;
  };
  return { dir, at, sim, sims, cloud, api, provisionEdge };
}

describe.each(BACKENDS)('provisioning a gateway and adding a device at runtime ($backend)', ({ backend, skip }) => {
  it.skipIf(skip)('creates a gateway whose credential works at once, polls a device added to its running edge within two poll intervals, and revokes the credential of the gateway retired', async () => {
    const { dir, at, sim, api } = await stack(backend);

    // 1. The gateway: its credential works on the broker at once.
    const created = await api('POST', '/api/registry/gateways', { id: 'gw-xz-lianhua', name: 'Lianhua Road cabinet' });
    expect(created.status, JSON.stringify(created.json)).toBe(201);
    const credential = created.json.credential as { username: string; password: string };
    expect(credential.username).toBe('gw-xz-lianhua');
    const probe = await connectMqtt(at.mqtt, { username: credential.username, password: credential.password, clientId: 'probe' });
    await probe.endAsync();

    // 2. Its edge, started from the file the answer gave: no devices yet.
    const file = join(dir, 'edge-gw-xz-lianhua.yaml');
    writeFileSync(file, created.json.edgeConfig as string);
    chmodSync(file, 0o600);
    const config = loadEdgeConfig(file, profiles);
    expect(config).toMatchObject({ gateway: 'gw-xz-lianhua', mqtt: { url: at.mqtt, username: 'gw-xz-lianhua' }, pollMs: POLL_MS, buses: [], devices: [] });
    expect(config.revision).toBeGreaterThan(0);
    const edge = buildEdge({ config, profiles, dataDir: join(dir, 'edge'), reconnectMs: 200 });
    await edge.start();
    cleanups.push(() => edge.stop());
    await eventually(async () => ((await api('GET', '/api/gateways')).json as { id: string; online: boolean }[]).some((g) => g.id === 'gw-xz-lianhua' && g.online));

    // 3. Its bus and a device on it, while the edge runs.
    const busAdded = await api('POST', '/api/registry/buses', { id: 'bus-lianhua', gateway: 'gw-xz-lianhua', host: '127.0.0.1', port: sim.port, timeoutMs: 500 });
    expect(busAdded.status, JSON.stringify(busAdded.json)).toBe(201);
    const addedAt = Date.now();
    const deviceAdded = await api('POST', '/api/registry/devices', {
      id: 'XZ-WL-031', profile: 'water-level', name: 'Water level gauge, Lianhua Road underpass', componentCode: '4404020101000031',
      lat: 22.27, lon: 113.57, ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-lianhua', unitId: 1,
    });
    expect(deviceAdded.status, JSON.stringify(deviceAdded.json)).toBe(201);
    const storedAt = await eventually(async () => {
      const r = await api('GET', '/api/devices/XZ-WL-031/readings?limit=5');
      return r.status === 200 && (r.json.items as unknown[]).length > 0 ? Date.now() : undefined;
    }, 10_000, 25);
    expect(storedAt - addedAt).toBeLessThan(2 * POLL_MS);
    const readings = (await api('GET', '/api/devices/XZ-WL-031/readings?limit=5')).json.items as { gateway: string; values: { level_m: number } }[];
    expect(readings[0]).toMatchObject({ gateway: 'gw-xz-lianhua', values: { level_m: expect.closeTo(0.31, 1) } });
    expect(edge.stats().revision).toBeGreaterThan(config.revision!);

    // 4. Retired, the device is no longer polled; the gateway retired (its bus first), its credential is revoked.
    expect((await api('POST', '/api/registry/devices/XZ-WL-031/retire')).status).toBe(200);
    await eventually(() => !('XZ-WL-031' in edge.stats().pollMs));
    expect((await api('POST', '/api/registry/buses/bus-lianhua/retire')).status).toBe(200);
    expect((await api('POST', '/api/registry/gateways/gw-xz-lianhua/retire')).status).toBe(200);
    await eventually(async () => {
      try {
        const c = await connectMqtt(at.mqtt, { username: credential.username, password: credential.password, clientId: 'probe-2' });
        await c.endAsync();
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 5;
      }
    });
  }, 60_000);
});

describe('a device moved from one provisioned gateway to another while both edges run', () => {
  it('is polled by the new gateway\'s edge (its readings stored from there) and no longer by the old one', async () => {
    const { sims, api, provisionEdge } = await stack('sqlite', [0.31, 0.77]);
    const edgeA = await provisionEdge('gw-xz-a');
    const edgeB = await provisionEdge('gw-xz-b');
    for (const [i, gw] of ['gw-xz-a', 'gw-xz-b'].entries()) {
      const r = await api('POST', '/api/registry/buses', { id: `bus-${gw}`, gateway: gw, host: '127.0.0.1', port: sims[i].port, timeoutMs: 500 });
      expect(r.status, JSON.stringify(r.json)).toBe(201);
    }
    const added = await api('POST', '/api/registry/devices', {
      id: 'XZ-WL-032', profile: 'water-level', name: 'Water level gauge, moved', componentCode: '4404020101000032',
      lat: 22.27, lon: 113.57, ownerUnit: 'xz-drainage', maintainerUnit: 'iot-ops', bus: 'bus-gw-xz-a', unitId: 1,
    });
    expect(added.status, JSON.stringify(added.json)).toBe(201);
    type R = { gateway: string; values: { level_m: number } };
    const latest = async () => (await api('GET', '/api/devices/XZ-WL-032/readings?limit=1')).json.items as R[];
    await eventually(async () => (await latest())[0]?.gateway === 'gw-xz-a');
    const moved = await api('POST', '/api/registry/devices/XZ-WL-032/move', { bus: 'bus-gw-xz-b', unitId: 1 });
    expect(moved.status, JSON.stringify(moved.json)).toBe(200);
    await eventually(async () => (await latest())[0]?.gateway === 'gw-xz-b', 10_000, 50);
    expect((await latest())[0].values.level_m).toBeCloseTo(0.77, 1);
    await eventually(() => !('XZ-WL-032' in edgeA.stats().pollMs));
    expect(Object.keys(edgeB.stats().pollMs)).toEqual(['XZ-WL-032']);
    // Fault guarded: what an edge answered to set-devices (or why it was not sent) was kept in the cloud's memory only,
    // never shown to the operator.
    const config = await api('GET', '/api/registry/gateways/gw-xz-b/config');
    expect(config.json.push).toMatchObject({ outcome: 'ok', message: expect.stringContaining('added XZ-WL-032') });
  }, 60_000);
});

describe('provisioning in the demo (its broker in the same process)', () => {
  it('gives a gateway created through the API a credential from the in-process broker\'s store that works at once, and an edge config naming that broker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-provision-demo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const demo = buildDemo({ dataDir: dir, mqttPort: 0, httpPort: 0, scenarios: false });
    const at = await demo.start();
    cleanups.push(() => demo.stop());
    const res = await demo.cloud.app.inject({
      method: 'POST', url: '/api/registry/gateways', headers: { authorization: `Bearer ${demo.tokens.admin}` }, payload: { id: 'gw-xz-demo-new', name: 'A cabinet added in the demo' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const { credential, edgeConfig } = res.json() as { credential: { username: string; password: string }; edgeConfig: string };
    const c = await connectMqtt(at.mqtt, { username: credential.username, password: credential.password, clientId: 'probe' });
    await c.endAsync();
    expect(edgeConfig).toContain(`url: ${at.mqtt}`);
  }, 60_000);
});
