import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { buildSimulator } from '../../devices/simulator.ts';
import { buildEdge } from '../../edge/edge.ts';
import { validateEdgeConfig } from '../../edge/config.ts';
import { brokerServers } from '../../lib/broker-urls.ts';
import { recordingBroker, until } from './helpers.ts';

/**
 * Several brokers in the edge config (`mqtt.urls`, README "Edge gateway"): when its broker dies the
 * edge connects to the next one, and every reading it accepted reaches one of them.
 */

const profiles = loadProfiles();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('edge broker failover', () => {
  it('moves to the next broker when its broker goes away, losing no accepted reading', async () => {
    const a = await recordingBroker();
    const b = await recordingBroker();
    cleanups.push(() => a.stop(), () => b.stop());
    const sim = buildSimulator({ port: 0, devices: [{ id: 'WL-1', profile: profiles.get('water-level')!, unitId: 1 }] });
    await sim.start();
    cleanups.push(() => sim.stop());
    const dir = mkdtempSync(join(tmpdir(), 'cs-failover-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const edge = buildEdge({
      config: {
        gateway: 'gw-fo', mqtt: { url: a.url, urls: [b.url], username: 'gw-fo', password: 'pw', keepaliveS: 5 },
        pollMs: 100, healthMs: 0,
        buses: [{ id: 'bus-a', host: '127.0.0.1', port: sim.port, timeoutMs: 500 }],
        devices: [{ id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 }],
      },
      profiles, dataDir: dir, reconnectMs: 100,
    });
    cleanups.push(() => edge.stop());
    await edge.start();
    await until(() => a.store.size >= 5);
    await a.stop();
    const before = edge.stats().seq;
    // The first broker stays down: the readings go on through the second.
    await until(() => [...b.store.values()].some((r) => r.seq > before + 5));
    await edge.stop();

    const stored = new Set([...a.store.keys(), ...b.store.keys()]);
    const last = edge.stats().seq;
    const missing = Array.from({ length: last }, (_, i) => `gw-fo/${i + 1}`).filter((k) => !stored.has(k));
    expect(missing).toEqual([]);
    expect(edge.stats().outbox).toMatchObject({ depth: 0, dropped: 0 });
  });

  it('takes mqtt.urls in the config and refuses one that is not a broker URL', () => {
    const base = {
      gateway: 'gw-fo', pollMs: 1000,
      buses: [{ id: 'bus-a', host: '127.0.0.1', port: 5020 }],
      devices: [{ id: 'WL-1', profile: 'water-level', bus: 'bus-a', unitId: 1 }],
    };
    const ok = validateEdgeConfig({ ...base, mqtt: { url: 'mqtt://10.0.0.5:1883', urls: ['mqtt://10.0.0.6:1883'], username: 'u', password: 'p' } }, profiles);
    expect(ok.mqtt.urls).toEqual(['mqtt://10.0.0.6:1883']);
    expect(() => validateEdgeConfig({ ...base, mqtt: { url: 'mqtt://10.0.0.5:1883', urls: ['10.0.0.6:1883'], username: 'u', password: 'p' } }, profiles))
      .toThrow(/mqtt\.urls\[0\]/);
    expect(brokerServers(['mqtt://a:1884', 'mqtts://b'])).toEqual([
      { host: 'a', port: 1884, protocol: 'mqtt' }, { host: 'b', port: 8883, protocol: 'mqtts' },
    ]);
  });
});
