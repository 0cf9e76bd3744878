import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProfiles } from '../../devices/profile.ts';
import { loadDistrict } from '../../devices/district.ts';
import { buildSimulator } from '../../devices/simulator.ts';
import { buildGateway } from '../../gateway/gateway.ts';
import { openCredentialStore } from '../../gateway/credentials.ts';
import { storeBeforePuback } from '../../gateway/handoff.ts';
import { buildEdge, type Edge } from '../../edge/edge.ts';
import { edgeConfigFromDistrict } from '../../edge/config.ts';
import { SEQ_FILE } from '../../edge/seq.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { openDatabase } from '../../cloud/db/database.ts';
import { DEMO_DISTRICT } from '../../cli/demo.ts';
import { StopStack } from '../../lib/lifecycle.ts';
import { silentLogger } from '../../lib/log.ts';
import { eventually } from '../helpers/process.ts';

/**
 * Finding 1 of issue #10, end to end on loopback with real servers (Modbus TCP simulator, the
 * authenticated Aedes gateway, the cloud on SQLite storing each reading before its PUBACK, the edge):
 * an edge box replaced (its data directory wiped, a new edge with the same gateway id) starts seq at 1
 * again. On b5f03fd the cloud acknowledged each of its readings and dropped it as a duplicate of the old
 * box's (gateway, seq), so a flood raised nothing. Now the new box is a new stream.
 */

const GW = 'gw-xz-gongbei';
const BUS = 'bus-gongbei-a';
const FLOODED = 'XZ-WL-003';

let stops: StopStack | undefined;
let dir: string | undefined;

afterEach(async () => {
  await stops?.stopAll();
  stops = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('an edge whose data directory is replaced mid-run', () => {
  it('has every reading of the new edge stored (not dropped as duplicates of the old one) and the flood it reports opens its case', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-e2e-replaced-'));
    const s = (stops = new StopStack(silentLogger(), 'test'));
    const profiles = loadProfiles();
    const district = loadDistrict(DEMO_DISTRICT, profiles);

    const creds = openCredentialStore(dir);
    const password = creds.create(GW, 'gateway').password;
    let cloud: Cloud | undefined;
    const gateway = buildGateway({ host: '127.0.0.1', port: 0, credentials: creds, onPublishAuthorized: storeBeforePuback(() => cloud?.ingest) });
    const mq = await gateway.start();
    s.push(() => gateway.stop());

    const sim = buildSimulator({
      host: '127.0.0.1', port: 0,
      devices: district.devices.filter((d) => d.bus === BUS).map((d) => ({ id: d.id, profile: profiles.get(d.profile)!, unitId: d.unitId })),
    });
    const bus = await sim.start();
    s.push(() => sim.stop());

    const c = await buildCloud({ source: { kind: 'in-process' }, db: { kind: 'sqlite', file: join(dir, 'cs.db') }, district, profiles, escalation: false, emergency: false });
    await c.start();
    cloud = c;
    s.push(() => c.stop());

    // One bus of the gateway (the one the flooded point is on); no edge alarms, so every seq is a reading.
    const oneBus = { ...district, buses: district.buses.filter((b) => b.id === BUS) };
    const full = edgeConfigFromDistrict(oneBus, GW, { url: `mqtt://${mq.host}:${mq.port}`, username: GW, password }, new Map([[BUS, bus.port]]), profiles);
    const config = { ...full, pollMs: 100, healthMs: 60_000, alarms: { ...full.alarms, enabled: false } };
    const edgeDir = join(dir, 'edge', GW);
    const startEdge = async (): Promise<Edge> => {
      const edge = buildEdge({ config, profiles, dataDir: edgeDir });
      await edge.start();
      return edge;
    };
    const stored = async (stream: string) => {
      const db = openDatabase({ kind: 'sqlite', file: join(dir!, 'cs.db') });
      try {
        return (await db.db.selectFrom('readings').select('seq').where('gateway', '=', GW).where('stream', '=', stream).orderBy('seq').execute()).map((r) => Number(r.seq));
      } finally {
        await db.close();
      }
    };
    const streamOf = () => (JSON.parse(readFileSync(join(edgeDir, SEQ_FILE), 'utf8')) as { stream: string }).stream;

    // The old box: well past the seqs the new one will use, all of them acknowledged.
    const old = await startEdge();
    const oldStream = streamOf();
    await eventually(() => old.stats().seq >= 150, 60_000, 50);
    await old.stop();
    const oldLast = old.stats().seq;
    expect((await stored(oldStream)).length).toBe(oldLast);

    // Replaced: a wiped data directory, the same gateway id, seq from 1 again. The street floods.
    rmSync(edgeDir, { recursive: true, force: true });
    sim.set(FLOODED, 'level_m', 0.93);
    const fresh = await startEdge();
    const newStream = streamOf();
    expect(newStream).not.toBe(oldStream);
    await eventually(() => fresh.stats().seq >= 10, 30_000, 20);
    await fresh.stop();

    // Every reading of the new box is stored, under its own stream, none taken for a duplicate.
    const n = fresh.stats().seq;
    expect(n).toBeLessThan(oldLast);
    expect(await stored(newStream)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(c.stats()).toMatchObject({ duplicates: 0, conflicts: 0 });

    // And the flood it reported opened its case.
    const token = await c.tokens.create('operator');
    const cases = (await c.app.inject({ url: '/api/cases', headers: { authorization: `Bearer ${token}` } })).json().items as { device: string; hazard: string }[];
    expect(cases.filter((x) => x.device === FLOODED)).toMatchObject([{ hazard: 'waterlogging' }]);
  });
});
