import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict, type District } from '../devices/district.ts';
import { createTokenInDatabase } from '../cloud/tokens.ts';
import { CsError } from '../lib/errors.ts';
import { CLUSTER_PARTITIONS, clusterFiles, provisionCluster, writeClusterConfigs, type ClusterSecrets } from './cluster-init.ts';
import { service, type Service } from './cluster-service.ts';
import { DEMO_DISTRICT } from './demo-district.ts';

/**
 * `citysteward cluster up` (README "A cluster on one machine"): the city-scale topology as separate
 * processes without Docker: the demo district's simulators, two brokers sharing Redis (sessions, routing
 * and the readings stream), two cloud workers consuming the stream into one PostgreSQL database, and
 * both edges, each preferring one broker and failing over to the other. Every port is chosen by the
 * system; the cluster's state (configs, secrets, data, logs) lives in `dir`, and a second `up` of the
 * same `dir` resumes it. Used by the fault drills (bench/drills.ts).
 */

export interface ClusterOptions {
  dir: string;
  /** Redis of the brokers and the stream; default redis://127.0.0.1:6379. */
  redisUrl?: string;
  /** The clouds' PostgreSQL database, created when missing; default postgresql://postgres@127.0.0.1:5432/citysteward_cluster. */
  databaseUrl?: string;
  /** A district file; default the demo district. */
  districtFile?: string;
  /** Play the district's scripted scenarios (default true). */
  scenarios?: boolean;
  brokers?: number;
  clouds?: number;
  pollMs?: number;
  /** Publish every poll (`reporting.mode: poll`). */
  everyPoll?: boolean;
  /** CS_LOG_LEVEL of the services (default warn); their logs are in `dir`/logs. */
  logLevel?: string;
}

export interface ClusterAddresses {
  brokers: string[];
  clouds: string[];
  edges: Record<string, string>;
  buses: Record<string, { host: string; port: number }>;
  redis: { url: string; keyPrefix: string; stream: string };
  database: string;
  tokensFile: string;
  logs: string;
}

export interface Cluster {
  start(): Promise<ClusterAddresses>;
  /** Edges first (their outboxes flushed), then clouds, brokers and simulators. */
  stop(): Promise<void>;
  readonly services: Map<string, Service>;
  readonly district: District;
  readonly secrets: ClusterSecrets;
  readonly addresses: ClusterAddresses;
}

export const DEFAULT_CLUSTER_REDIS = 'redis://127.0.0.1:6379';
export const DEFAULT_CLUSTER_DATABASE = 'postgresql://postgres@127.0.0.1:5432/citysteward_cluster';

/** Creates the database of `url` on its server when it does not exist. */
export async function ensureDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  if (!/^[A-Za-z0-9_]{1,63}$/.test(name)) throw new CsError('CS_CLI_USAGE', `database name "${name}" must be letters, digits and _`);
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount === 0) await c.query(`CREATE DATABASE "${name}"`);
  } finally {
    await c.end();
  }
}

interface ClusterState { keyPrefix: string; brokerPorts?: number[]; brokerHttpPorts?: number[]; cloudPorts?: number[]; edgePorts?: Record<string, number> }

export function buildCluster(o: ClusterOptions): Cluster {
  const dir = resolve(o.dir);
  const redisUrl = o.redisUrl ?? DEFAULT_CLUSTER_REDIS;
  const databaseUrl = o.databaseUrl ?? DEFAULT_CLUSTER_DATABASE;
  const nBrokers = o.brokers ?? 2;
  const nClouds = o.clouds ?? 2;
  const profiles = loadProfiles();
  // The simulators bind ports of the system's choosing; the edges learn them from sim-endpoints.json.
  const raw = parse(readFileSync(o.districtFile ?? DEMO_DISTRICT, 'utf8')) as { buses: { host?: string; port: number }[]; devices: { scenario?: unknown }[] };
  for (const b of raw.buses) Object.assign(b, { host: '127.0.0.1', port: 0 });
  if (o.scenarios === false) for (const d of raw.devices) delete d.scenario;
  const districtYaml = stringify(raw);
  // The same gateways, buses and devices (the configs take the bus endpoints from the simulators).
  const district: District = loadDistrict(o.districtFile ?? DEMO_DISTRICT, profiles);
  const configDir = join(dir, 'config');
  const logs = join(dir, 'logs');
  const stateFile = join(dir, 'cluster.json');
  const services = new Map<string, Service>();
  const env = { CS_LOG_LEVEL: o.logLevel ?? 'warn', CS_LOG_FORMAT: 'json' };
  let secrets: ClusterSecrets | undefined;
  let addresses: ClusterAddresses | undefined;

  const add = (name: string, args: string[], ready: RegExp, extraEnv: NodeJS.ProcessEnv = {}) => {
    const s = service({ name, args, ready, logFile: join(logs, `${name}.log`), env: { ...env, ...extraEnv } });
    services.set(name, s);
    return s;
  };

  async function stop(): Promise<void> {
    const order = [...services.values()];
    const of = (p: string) => order.filter((s) => s.name.startsWith(p));
    for (const group of [of('edge-'), of('cloud-'), of('broker-'), of('sim')]) await Promise.all(group.map((s) => s.stop()));
  }

  async function start(): Promise<ClusterAddresses> {
    mkdirSync(logs, { recursive: true });
    const state: ClusterState = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, 'utf8')) : { keyPrefix: `cs:cluster:${randomBytes(4).toString('hex')}:` };
    const saveState = () => writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n');
    saveState();
    await ensureDatabase(databaseUrl).catch((err: Error) => {
      throw new CsError('CS_CLI_CLUSTER_DATABASE', `cannot reach or create the cluster's database ${databaseUrl.replace(/:[^:@/]*@/, ':***@')}: ${err.message}`);
    });
    const districtFile = join(configDir, 'district.yaml');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(districtFile, districtYaml);
    secrets = provisionCluster({ dir: configDir, credentialsDir: join(dir, 'brokers'), district });
    try {
      rmSync(join(dir, 'sim', 'sim-endpoints.json'), { force: true });
      const sim = add('sim', ['sim', '--config', districtFile, '--data-dir', join(dir, 'sim')], /sim: bus /);
      await sim.start();
      const endpoints = await waitForFile(join(dir, 'sim', 'sim-endpoints.json'), sim);
      // Brokers first with port 0 (or the port of an earlier run), then the configs that name them.
      const gatewayConfig = join(configDir, clusterFiles.gateway);
      writeFileSync(gatewayConfig, stringify({ mqtt: { host: '127.0.0.1', port: 0 }, redis: { url: redisUrl, keyPrefix: state.keyPrefix }, stream: { key: 'readings', partitions: CLUSTER_PARTITIONS } }));
      const brokerUrls: string[] = [];
      const brokerAdmin: string[] = [];
      for (let i = 0; i < nBrokers; i++) {
        // Each broker's admin API too: the clouds provision gateways created through the API with it.
        const args = (port: number, http = port === 0 ? 0 : state.brokerHttpPorts?.[i] ?? 0) => ['gateway', '--config', gatewayConfig, '--data-dir', join(dir, 'brokers'), '--host', '127.0.0.1', '--mqtt-port', String(port), '--http-port', String(http)];
        const b = add(`broker-${i + 1}`, args(state.brokerPorts?.[i] ?? 0), /MQTT listening on (mqtt:\/\/\S+)[\s\S]*?HTTP on (http:\/\/\S+)/, { CS_GATEWAY_ADMIN_TOKEN: secrets.gatewayAdmin });
        const m = await startOnFreePort(b, (port) => args(port));
        brokerUrls.push(m[1]!);
        brokerAdmin.push(m[2]!);
        b.setArgs(args(Number(new URL(m[1]!).port), Number(new URL(m[2]!).port)));
      }
      state.brokerPorts = brokerUrls.map((u) => Number(new URL(u).port));
      state.brokerHttpPorts = brokerAdmin.map((u) => Number(new URL(u).port));
      saveState();
      writeClusterConfigs({
        dir: configDir, credentialsDir: join(dir, 'brokers'), district, districtFile,
        brokers: brokerUrls, brokerAdmin, redis: { url: redisUrl, keyPrefix: state.keyPrefix }, brokerListen: { host: '127.0.0.1', port: 0 },
        database: databaseUrl, clouds: nClouds, cloudHttp: { host: '127.0.0.1', port: 0 }, photosDir: join(dir, 'photos'),
        buses: endpoints, pollMs: o.pollMs, everyPoll: o.everyPoll, edgeHttp: { host: '127.0.0.1', port: 0 },
      }, secrets);
      // The gateway.yaml written above listens on 127.0.0.1 like the brokers started from it.
      const clouds: string[] = [];
      for (let i = 0; i < nClouds; i++) {
        const file = join(configDir, clusterFiles.cloud(i));
        const args = (port: number) => ['cloud', '--config', file, '--data-dir', join(dir, `cloud-${i + 1}`), '--http-port', String(port)];
        // One at a time: the first applies the migrations.
        const c = add(`cloud-${i + 1}`, args(state.cloudPorts?.[i] ?? 0), /HTTP API on (http:\/\/\S+)\/api/);
        const m = await startOnFreePort(c, args);
        clouds.push(m[1]!);
        c.setArgs(args(Number(new URL(m[1]!).port)));
      }
      state.cloudPorts = clouds.map((u) => Number(new URL(u).port));
      saveState();
      const edges: Record<string, string> = {};
      for (const g of district.gateways) {
        const e = add(`edge-${g.id}`, ['edge', '--config', join(configDir, clusterFiles.edge(g.id)), '--data-dir', join(dir, `edge-${g.id}`)], /edge \S+: polling[^\n]*\n/);
        const m = await e.start();
        edges[g.id] = /metrics on (http:\/\/\S+)/.exec(m[0])?.[1] ?? '';
      }
      const tokensFile = join(dir, 'tokens.json');
      if (!existsSync(tokensFile)) {
        const db = { kind: 'postgres' as const, url: databaseUrl };
        writeFileSync(tokensFile, JSON.stringify({ admin: await createTokenInDatabase(db, 'admin'), operator: await createTokenInDatabase(db, 'operator') }, null, 2) + '\n', { mode: 0o600 });
      }
      addresses = {
        brokers: brokerUrls, clouds, edges, buses: endpoints,
        redis: { url: redisUrl, keyPrefix: state.keyPrefix, stream: `${state.keyPrefix}readings` },
        database: databaseUrl, tokensFile, logs,
      };
      return addresses;
    } catch (err) {
      await stop();
      throw err;
    }
  }

  return {
    start,
    stop,
    services,
    district,
    get secrets() { if (!secrets) throw new Error('cluster not started'); return secrets; },
    get addresses() { if (!addresses) throw new Error('cluster not started'); return addresses; },
  };
}

async function waitForFile(file: string, owner: Service): Promise<Record<string, { host: string; port: number }>> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(file)) {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        // being written
      }
    }
    if (!owner.running) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${owner.name} wrote no ${file}:\n${owner.output().slice(-2000)}`);
}

/** Starts on the port of an earlier run; when another process took it meanwhile, on any free port. */
async function startOnFreePort(s: Service, args: (port: number) => string[]): Promise<RegExpMatchArray> {
  try {
    return await s.start();
  } catch (err) {
    if (!/CS_CLI_PORT_IN_USE|EADDRINUSE/.test((err as Error).message)) throw err;
    s.setArgs(args(0));
    return s.start();
  }
}
