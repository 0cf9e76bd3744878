import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { loadProfiles } from '../../devices/profile.ts';
import type { Bus, Device } from '../../devices/district.ts';
import { devicesDigest } from '../../edge/live-config.ts';
import { createDevicePush } from '../../cloud/provision/push.ts';
import { edgeConfigFor, type GatewayDevices } from '../../cloud/provision/edge-config.ts';

/** Which edges are sent set-devices, and when (a pure unit: the registry and the publish are plain functions). */

const profiles = loadProfiles();
const bus: Bus = { id: 'bus-1', gateway: 'gw-1', host: '10.0.0.1', port: 502, timeoutMs: 1000 };
const dev = (id: string, unitId: number) => ({ id, profile: 'water-level', bus: 'bus-1', unitId }) as Device;

function setup() {
  const gateways = new Map<string, GatewayDevices>([
    ['gw-1', { gateway: { id: 'gw-1' }, buses: [bus], devices: [dev('WL-1', 1)] }],
    ['gw-hand', { gateway: { id: 'gw-hand' }, buses: [{ ...bus, id: 'bus-h', gateway: 'gw-hand' }], devices: [] }],
  ]);
  let version = 7;
  const sent: { topic: string; body: Record<string, unknown> }[] = [];
  const push = createDevicePush({
    gateway: (id) => gateways.get(id), version: () => version, profiles, now: () => Date.parse('2026-11-30T10:00:00Z'), logger: pino({ level: 'silent' }),
    publish: async (topic, payload) => { sent.push({ topic, body: JSON.parse(payload) }); },
  });
  const digestOf = (id: string) => devicesDigest(edgeConfigFor(gateways.get(id)!, { username: id, password: '-' }, { mqtt: { url: 'mqtt://-' } }, profiles, 1).config);
  const birth = (revision: number, digest: string) => ({ online: true, bdSeq: 1, ts: '2026-11-30T10:00:00Z', config: { revision, digest } });
  return { gateways, sent, push, digestOf, birth, setVersion: (v: number) => { version = v; } };
}

describe('set-devices pushes', () => {
  it('leaves an edge with a hand-written config (revision 0 in its birth) alone, even when the registry changes its gateway', () => {
    const s = setup();
    s.push.state('gw-hand', s.birth(0, 'whatever'));
    s.push.changed(['gw-hand']);
    expect(s.sent).toEqual([]);
  });

  it('sends nothing to a managed edge that polls what the registry holds, and the current lists to one that differs', () => {
    const s = setup();
    s.push.state('gw-1', s.birth(7, s.digestOf('gw-1')));
    expect(s.sent).toEqual([]);
    s.push.state('gw-1', s.birth(3, 'an-older-list'));
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0]).toEqual({
      topic: 'cs/v1/gw-1/cmd',
      body: {
        id: 'set-devices-r7', type: 'set-devices', revision: 7, ts: '2026-11-30T10:00:00.000Z',
        buses: [{ id: 'bus-1', type: 'tcp', host: '10.0.0.1', port: 502, timeoutMs: 1000 }],
        devices: [{ id: 'WL-1', profile: 'water-level', bus: 'bus-1', unitId: 1 }],
      },
    });
  });

  it('sends a registry change to the managed edges it touched, and records what each answered', () => {
    const s = setup();
    s.push.state('gw-1', s.birth(7, s.digestOf('gw-1')));
    s.gateways.get('gw-1')!.devices.push(dev('WL-2', 2));
    s.setVersion(8);
    s.push.changed(['gw-1', 'gw-hand']);
    expect(s.sent.map((m) => [m.topic, m.body.revision, (m.body.devices as unknown[]).length])).toEqual([['cs/v1/gw-1/cmd', 8, 2]]);
    s.push.ack('gw-1', { id: 'set-devices-r8', outcome: 'ok', message: 'revision 8: 2 devices on 1 buses; added WL-2' });
    expect(s.push.status()['gw-1']).toMatchObject({ revision: 8, outcome: 'ok', message: 'revision 8: 2 devices on 1 buses; added WL-2' });
    // Acknowledged: the same change seen again (another worker's poll) sends nothing more.
    s.push.changed(['gw-1']);
    expect(s.sent).toHaveLength(1);
  });

  it('does not send what the edge would refuse (a bus on port 0 in the registry)', () => {
    const s = setup();
    s.push.state('gw-1', s.birth(2, 'old'));
    s.sent.length = 0;
    s.gateways.get('gw-1')!.buses[0] = { ...bus, port: 0 };
    s.setVersion(9);
    s.push.changed(['gw-1']);
    expect(s.sent).toEqual([]);
  });

  // Fault guarded: a gateway past the command's limits (over 500 devices, or over the 64 KiB an edge reads) was sent
  // set-devices anyway and logged as sent; the edge ignored the oversized one unread, so nobody learned why its
  // devices were never polled, and it was sent again at every birth.
  function crowded(s: ReturnType<typeof setup>, count: number, idLength: number) {
    const buses: Bus[] = [];
    const devices: Device[] = [];
    for (let i = 0; i < count; i++) {
      const b = `bus-${Math.floor(i / 200)}`.padEnd(idLength, 'b');
      if (i % 200 === 0) buses.push({ ...bus, id: b, port: 502 + i / 200 });
      devices.push({ id: `WL-${i}-`.padEnd(idLength, 'x'), profile: 'water-level', bus: b, unitId: (i % 200) + 1 } as Device);
    }
    s.gateways.set('gw-1', { gateway: { id: 'gw-1' }, buses, devices });
  }

  it('sends no set-devices past 500 devices, and records why for the operator', () => {
    const s = setup();
    s.push.state('gw-1', s.birth(2, 'old'));
    s.sent.length = 0;
    crowded(s, 501, 8);
    s.setVersion(10);
    s.push.changed(['gw-1']);
    expect(s.sent).toEqual([]);
    expect(s.push.status()['gw-1']).toMatchObject({ revision: 10, outcome: 'not-sent', message: expect.stringContaining('501 devices; a gateway\'s edge takes at most 500') });
  });

  it('sends no set-devices larger than an edge reads (64 KiB), and records why for the operator', () => {
    const s = setup();
    s.push.state('gw-1', s.birth(2, 'old'));
    s.sent.length = 0;
    crowded(s, 480, 64);
    s.setVersion(11);
    s.push.changed(['gw-1']);
    s.push.state('gw-1', s.birth(2, 'old'));
    expect(s.sent).toEqual([]);
    expect(s.push.status()['gw-1']).toMatchObject({ revision: 11, outcome: 'not-sent', message: expect.stringMatching(/^the command is \d+ bytes; an edge reads at most 65536/) });
  });
});
