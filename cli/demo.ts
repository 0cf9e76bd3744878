import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from '../lib/log.ts';
import { silentLogger } from '../lib/log.ts';
import { loadProfiles, type Profile } from '../devices/profile.ts';
import { loadDistrict, type District } from '../devices/district.ts';
import { buildSimulator, type Simulator } from '../devices/simulator.ts';
import { buildGateway, type Gateway } from '../gateway/gateway.ts';
import { openCredentialStore } from '../gateway/credentials.ts';
import { buildEdge, type Edge } from '../edge/edge.ts';
import { edgeConfigFromDistrict } from '../edge/config.ts';
import { buildCloud, type Cloud } from '../cloud/app.ts';
import { storeCredentials } from '../cloud/provision/index.ts';
import { StopStack } from '../lib/lifecycle.ts';
import { CsError } from '../lib/errors.ts';
import { preferPort } from './listen.ts';
import { storeBeforePuback } from '../gateway/handoff.ts';
import { DEFAULT_FAST_POLL_MS } from '../lib/vocabulary.ts';
import { ensureDemoUsers, type DemoUser } from './demo-users.ts';

import { DEMO_DISTRICT } from './demo-district.ts';

export { DEMO_DISTRICT };
export const CLOUD_USER = 'cloud';
/** The demo's read-only MQTT identity (role observer: subscribe to cs/v1/#, publish nothing). */
export const OBSERVER_USER = 'observer';

export interface DemoOptions {
  dataDir: string;
  districtFile?: string;
  /** Broker port: 1883 where free, else any free port; 0 for any. */
  mqttPort?: number;
  /** HTTP port: 8080 where free, else any free port; 0 for any. */
  httpPort?: number;
  /** Play the district's scripted scenarios (slow rise, sudden breach); on by default. */
  scenarios?: boolean;
  /** A directory of the user's own device profiles, beside (and shadowing) the built-in ones. */
  profilesDir?: string;
  /** Overrides every device's poll interval (tests use short ones). */
  pollMs?: number;
  /** How often each edge publishes its health (default 5 s). */
  healthMs?: number;
  /** Poll interval the gateways switch to in emergency mode (default DEFAULT_FAST_POLL_MS). */
  fastPollMs?: number;
  /** Let CAP alerts with status Exercise switch the mode (drills). */
  acceptExerciseWarnings?: boolean;
  /** How long a handled case's sensor must stay back in range before verification (workflow.verifyClearMs; tests use short ones). */
  verifyClearMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface DemoAddresses {
  mqtt: string;
  http: string;
  buses: Record<string, string>;
  tokensFile: string;
  /** `{ url, username, password }` of the read-only MQTT identity, for mosquitto_sub or MQTT Explorer. */
  observerFile: string;
  /** Tokens of the previous run of this data directory that this start revoked. */
  revokedTokens: number;
  /** `{ url, users: [{ username, password, role, unit }] }`: the people who sign in (README "Signing in"). */
  usersFile: string;
}

export interface Demo {
  start(): Promise<DemoAddresses>;
  stop(): Promise<void>;
  readonly cloud: Cloud;
  readonly gateway: Gateway;
  readonly simulators: Map<string, Simulator>;
  readonly edges: Map<string, Edge>;
  readonly district: District;
  readonly profiles: Map<string, Profile>;
  readonly tokens: Record<string, string>;
  /** The demo's users with their passwords (also in `usersFile`). */
  readonly users: DemoUser[];
}

/**
 * Everything on one machine with embedded defaults: one simulator per Modbus bus, the broker,
 * the cloud on SQLite and one edge per gateway of the district, all on loopback.
 */
export function buildDemo(opts: DemoOptions): Demo {
  const log = opts.logger ?? silentLogger();
  const dataDir = resolve(opts.dataDir);
  let profiles: Map<string, Profile>;
  let district: District;
  let gateway: Gateway;
  let cloud: Cloud;
  const simulators = new Map<string, Simulator>();
  const edges = new Map<string, Edge>();
  const tokens: Record<string, string> = {};
  const users: DemoUser[] = [];
  // Stopped in reverse order of start: edges first, then cloud, simulators, broker.
  const stops = new StopStack(log, 'demo');

  async function start(): Promise<DemoAddresses> {
    // A start that fails half-way stops what it had started (ports, sockets, databases).
    try {
      return await startParts();
    } catch (err) {
      await stops.stopAll();
      throw err;
    }
  }

  async function startParts(): Promise<DemoAddresses> {
    mkdirSync(dataDir, { recursive: true });
    profiles = loadProfiles({ userDir: opts.profilesDir, logger: log });
    district = loadDistrict(opts.districtFile ?? DEMO_DISTRICT, profiles);

    // Credentials: the demo owns its store and issues fresh passwords at every start.
    const creds = openCredentialStore(dataDir);
    const passwords = new Map<string, string>();
    for (const user of [CLOUD_USER, OBSERVER_USER, ...district.gateways.map((g) => g.id)]) {
      const role = user === CLOUD_USER ? 'service' : user === OBSERVER_USER ? 'observer' : 'gateway';
      const existing = creds.get(user);
      if (existing?.revokedAt) {
        throw new CsError('CS_CLI_DEMO_REVOKED', `the demo's credential "${user}" was revoked in ${dataDir}/credentials.json: run the demo with a fresh --data-dir`);
      }
      passwords.set(user, existing ? creds.rotate(user).password : creds.create(user, role).password);
    }

    gateway = buildGateway({
      host: '127.0.0.1', port: await preferPort(opts.mqttPort ?? 1883), credentials: creds, logger: log.child({ svc: 'gateway' }),
      // Broker and cloud in one process: a reading is acknowledged (PUBACK) only once the cloud
      // has stored it (or refused it for good); a store failure refuses it and the edge resends.
      onPublishAuthorized: storeBeforePuback(() => cloud?.ingest),
    });
    const mq = await gateway.start();
    stops.push(() => gateway.stop());
    const mqttUrl = `mqtt://${mq.host}:${mq.port}`;

    const busPorts = new Map<string, number>();
    for (const bus of district.buses) {
      const devices = district.devices.filter((d) => d.bus === bus.id).map((d) => ({
        id: d.id,
        profile: profiles.get(d.profile)!,
        unitId: d.unitId,
        scenario: opts.scenarios === false ? undefined : d.scenario,
      }));
      const sim = buildSimulator({ host: '127.0.0.1', port: 0, devices, now: opts.now, logger: log.child({ svc: 'sim', bus: bus.id }) });
      const at = await sim.start();
      stops.push(() => sim.stop());
      simulators.set(bus.id, sim);
      busPorts.set(bus.id, at.port);
    }
    writeFileSync(join(dataDir, 'sim-endpoints.json'), JSON.stringify(
      Object.fromEntries([...busPorts].map(([id, port]) => [id, { host: '127.0.0.1', port }])), null, 2) + '\n');

    const districtForCloud = opts.pollMs ? withPollMs(district, opts.pollMs) : district;
    cloud = await buildCloud({
      source: { kind: 'in-process' },
      db: { kind: 'sqlite', file: join(dataDir, 'citysteward.db') },
      district: districtForCloud,
      profiles,
      mqtt: { url: mqttUrl, username: CLOUD_USER, password: passwords.get(CLOUD_USER)! },
      // Gateways created through the API get their credential from the broker's store in this process.
      provisioning: { credentials: storeCredentials(creds), edge: { mqtt: { url: mqttUrl }, pollMs: opts.pollMs } },
      logger: log.child({ svc: 'cloud' }),
      now: opts.now,
      ...(opts.verifyClearMs !== undefined ? { workflow: { verifyClearMs: opts.verifyClearMs } } : {}),
      emergency: {
        fast: { pollMs: opts.fastPollMs ?? DEFAULT_FAST_POLL_MS },
        retryMs: 2000,
        policy: opts.acceptExerciseWarnings ? { acceptExercise: true } : undefined,
      },
    });
    await cloud.start();
    stops.push(() => cloud.stop());
    const httpAddr = await cloud.app.listen({ host: '127.0.0.1', port: await preferPort(opts.httpPort ?? 8080) });

    // A restarted demo revokes the tokens its previous run printed, so that only the current ones work.
    const tokensFile = join(dataDir, 'demo-tokens.json');
    let revokedTokens = 0;
    for (const old of previousTokens(tokensFile)) if (await cloud.tokens.revokeToken(old)) revokedTokens++;
    for (const role of ['admin', 'operator', 'commander', 'verifier'] as const) tokens[role] = await cloud.tokens.create(role);
    for (const unit of district.units) tokens[`crew:${unit.id}`] = await cloud.tokens.create('crew', unit.id);
    writeFileSync(tokensFile, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
    chmodSync(tokensFile, 0o600);
    const people = await ensureDemoUsers(cloud.users, district, dataDir, httpAddr);
    users.splice(0, users.length, ...people.users);
    const observerFile = join(dataDir, 'demo-mqtt-observer.json');
    writeFileSync(observerFile, JSON.stringify({ url: mqttUrl, username: OBSERVER_USER, password: passwords.get(OBSERVER_USER)! }, null, 2) + '\n', { mode: 0o600 });
    chmodSync(observerFile, 0o600);

    for (const gw of district.gateways) {
      const config = { ...edgeConfigFromDistrict(districtForCloud, gw.id, { url: mqttUrl, username: gw.id, password: passwords.get(gw.id)! }, busPorts), healthMs: opts.healthMs ?? 5000 };
      const edge = buildEdge({ config, profiles, dataDir: join(dataDir, 'edge', gw.id), logger: log.child({ svc: 'edge', gateway: gw.id }), now: opts.now });
      await edge.start();
      stops.push(() => edge.stop());
      edges.set(gw.id, edge);
    }

    const addresses: DemoAddresses = {
      mqtt: mqttUrl,
      http: httpAddr,
      buses: Object.fromEntries([...busPorts].map(([id, port]) => [id, `127.0.0.1:${port}`])),
      tokensFile,
      observerFile,
      revokedTokens,
      usersFile: people.file,
    };
    // Where the command line finds the running demo (`citysteward emergency status`, `sim set`).
    writeFileSync(join(dataDir, 'demo.json'), JSON.stringify(addresses, null, 2) + '\n');
    return addresses;
  }

  async function stop(): Promise<void> {
    await stops.stopAll();
  }

  return {
    start,
    stop,
    get cloud() { return cloud; },
    get gateway() { return gateway; },
    simulators,
    edges,
    get district() { return district; },
    get profiles() { return profiles; },
    tokens,
    users,
  };
}

/** The tokens a previous run wrote (none when the file is absent or unreadable). */
function previousTokens(file: string): string[] {
  try {
    const old = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return Object.values(old).filter((t): t is string => typeof t === 'string');
  } catch {
    return [];
  }
}

function withPollMs(d: District, pollMs: number): District {
  return { ...d, devices: d.devices.map((x) => ({ ...x, pollMs })) };
}
