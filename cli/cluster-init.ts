import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { stringify } from 'yaml';
import { openCredentialStore } from '../gateway/credentials.ts';
import type { District } from '../devices/district.ts';

/**
 * The init step of a cluster (README "A cluster"): credentials provisioned on the brokers' shared
 * credentials file, and the config file of every service written with them. Used by `citysteward cluster
 * up` (processes on one machine) and by the compose file's `init` service. Idempotent: the secrets are
 * kept in `secrets.json` (mode 0600) and reused, so a second run writes the same configs.
 */

export const CLOUD_IDENTITY = 'cloud';
export const OBSERVER_IDENTITY = 'observer';
/** Stream partitions of a cluster: 16 suits two to eight workers. */
export const CLUSTER_PARTITIONS = 16;

export interface ClusterSecrets {
  /** MQTT passwords by identity (every gateway of the district, `cloud`, `observer`). */
  mqtt: Record<string, string>;
  /** The PostgreSQL password (compose: the postgres service's, from `pg_password`). */
  pg: string;
  /** Token of the brokers' admin API (CS_GATEWAY_ADMIN_TOKEN). */
  gatewayAdmin: string;
}

/** The file beside the configs holding the brokers' admin token, for CS_GATEWAY_ADMIN_TOKEN_FILE (compose). */
export const GATEWAY_ADMIN_TOKEN_FILE = 'gateway_admin_token';

export interface ClusterTopology {
  /** Where the configs go. */
  dir: string;
  /** The brokers' shared data directory (credentials.json). */
  credentialsDir: string;
  district: District;
  /** The district file as the clouds and the simulators read it. */
  districtFile: string;
  /** Broker URLs as clients reach them, one per broker. */
  brokers: string[];
  /**
   * The brokers' admin API (gateway/admin.ts) as the clouds reach it, one URL per broker: the clouds provision
   * gateways created through the API with it (README "Provisioning gateways"). `brokerHttp`: where each broker's
   * admin port listens (gateway.yaml `http`); omitted when the brokers get it otherwise (`--http-port`).
   */
  brokerAdmin?: string[];
  brokerHttp?: { host: string; port: number };
  redis: { url: string; keyPrefix: string };
  /** The broker's own listener (`mqtt.host`, `mqtt.port`): 0.0.0.0:1883 in a container, 127.0.0.1:0 on one machine. */
  brokerListen: { host: string; port: number };
  /** PostgreSQL URL of the clouds' database, `{password}` replaced by the secret. */
  database: string;
  clouds: number;
  cloudHttp: { host: string; port: number };
  /** Where the cloud workers keep case photos (shared by all of them). */
  photosDir: string;
  /** Bus endpoints the edges poll (the simulators'), by bus id. */
  buses: Record<string, { host: string; port: number }>;
  /** Partitions of the readings stream, the same on every broker and worker (README "Several cloud workers"); default 16. */
  partitions?: number;
  pollMs?: number;
  /** Every poll published (`reporting.mode: poll`); the drills' steady load. */
  everyPoll?: boolean;
  /** Edge local HTTP (metrics, outbox depth): host and port of edge i (0 = any). */
  edgeHttp?: { host: string; port: number };
}

/** The secrets of `dir`, made once; missing MQTT identities are created on the credentials file. */
export function provisionCluster(t: Pick<ClusterTopology, 'dir' | 'credentialsDir' | 'district'>): ClusterSecrets {
  mkdirSync(t.dir, { recursive: true });
  const file = join(t.dir, 'secrets.json');
  const secrets: ClusterSecrets = existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8')) as ClusterSecrets
    : { mqtt: {}, pg: randomBytes(18).toString('base64url'), gatewayAdmin: randomBytes(24).toString('base64url') };
  const store = openCredentialStore(t.credentialsDir);
  const existing = new Set(store.list().filter((i) => !('revokedAt' in i && i.revokedAt)).map((i) => i.username));
  const wanted: [string, 'gateway' | 'service' | 'observer'][] = [
    ...t.district.gateways.map((g) => [g.id, 'gateway'] as [string, 'gateway']),
    [CLOUD_IDENTITY, 'service'], [OBSERVER_IDENTITY, 'observer'],
  ];
  for (const [username, role] of wanted) {
    if (secrets.mqtt[username] && existing.has(username)) continue;
    // A credential whose password we no longer have (or never had) gets a new one.
    secrets.mqtt[username] = existing.has(username) ? store.rotate(username).password : store.create(username, role).password;
  }
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

/** Files written by writeClusterConfigs, relative to `dir`. */
export const clusterFiles = {
  gateway: 'gateway.yaml',
  cloud: (i: number) => `cloud-${i + 1}.yaml`,
  edge: (gw: string) => `edge-${gw}.yaml`,
  pgPassword: 'pg_password',
};

/** Writes gateway.yaml, cloud-N.yaml, edge-GATEWAY.yaml and pg_password into `dir`. */
export function writeClusterConfigs(t: ClusterTopology, s: ClusterSecrets): void {
  // Written whole and renamed into place: a file left from an older run with looser permissions is
  // replaced, not rewritten under its old mode (writeFileSync's mode applies only to a new file).
  const yaml = (name: string, value: unknown, head: string) => writeFileAtomic(join(t.dir, name), `# ${head} (written by citysteward cluster)\n${stringify(value)}`, { mode: 0o600 });
  yaml(clusterFiles.gateway, {
    mqtt: t.brokerListen,
    ...(t.brokerHttp ? { http: t.brokerHttp } : {}),
    redis: t.redis,
    stream: { key: 'readings', partitions: t.partitions ?? CLUSTER_PARTITIONS },
  }, 'every broker of the cluster: shared Redis (sessions, routing) and the readings stream');
  const database = t.database.replace('{password}', encodeURIComponent(s.pg));
  for (let i = 0; i < t.clouds; i++) {
    // Each worker prefers its own broker and fails over to the others.
    const order = [...t.brokers.slice(i % t.brokers.length), ...t.brokers.slice(0, i % t.brokers.length)];
    yaml(clusterFiles.cloud(i), {
      district: t.districtFile,
      http: t.cloudHttp,
      database: { kind: 'postgres', url: database },
      photos: { dir: t.photosDir },
      mqtt: { url: order[0], ...(order.length > 1 ? { urls: order.slice(1) } : {}), username: CLOUD_IDENTITY, password: s.mqtt[CLOUD_IDENTITY] },
      stream: { url: t.redis.url, key: `${t.redis.keyPrefix}readings`, group: 'cloud', consumer: `cloud-${i + 1}`, partitions: t.partitions ?? CLUSTER_PARTITIONS },
      ...(t.brokerAdmin?.length ? {
        provisioning: {
          brokerAdmin: { urls: t.brokerAdmin, token: s.gatewayAdmin },
          edge: { mqtt: { url: t.brokers[0], ...(t.brokers.length > 1 ? { urls: t.brokers.slice(1) } : {}) }, pollMs: t.pollMs ?? 1000 },
        },
      } : {}),
    }, `cloud worker ${i + 1} of ${t.clouds}`);
  }
  t.district.gateways.forEach((g, i) => {
    const order = [...t.brokers.slice(i % t.brokers.length), ...t.brokers.slice(0, i % t.brokers.length)];
    const buses = t.district.buses.filter((b) => b.gateway === g.id);
    const busIds = new Set(buses.map((b) => b.id));
    yaml(clusterFiles.edge(g.id), {
      gateway: g.id,
      mqtt: { url: order[0], ...(order.length > 1 ? { urls: order.slice(1) } : {}), username: g.id, password: s.mqtt[g.id] },
      pollMs: t.pollMs ?? 1000,
      ...(t.everyPoll ? { reporting: { mode: 'poll' } } : {}),
      ...(t.edgeHttp ? { http: t.edgeHttp } : {}),
      buses: buses.map((b) => ({ id: b.id, host: t.buses[b.id]?.host ?? b.host, port: t.buses[b.id]?.port ?? b.port, timeoutMs: 1000 })),
      devices: t.district.devices.filter((d) => busIds.has(d.bus)).map((d) => ({ id: d.id, profile: d.profile, bus: d.bus, unitId: d.unitId })),
    }, `edge gateway ${g.id}`);
  });
  writeFileAtomic(join(t.dir, GATEWAY_ADMIN_TOKEN_FILE), s.gatewayAdmin, { mode: 0o600 });
  // The postgres image reads its password from a file (POSTGRES_PASSWORD_FILE) as its own user.
  writeFileSync(join(t.dir, clusterFiles.pgPassword), s.pg, { mode: 0o644 });
}
