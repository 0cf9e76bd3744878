/**
 * What the Node-RED tests share: the real broker (gateway service, ACLs on) and cloud on loopback,
 * the MQTT identities (cloud service, read-only integrator, a gateway, a commands service), an
 * integrator API token, and node-red-node-test-helper loaded with the CitySteward node package.
 */
import { createRequire } from 'node:module';
import pino from 'pino';
import type { Aedes } from 'aedes';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService, type GatewayService } from '../../gateway/service.ts';
import { buildCloud, type Cloud } from '../../cloud/app.ts';
import { district, freshDatabase, profiles } from '../cloud/fixtures.ts';

const require = createRequire(import.meta.url);

export const PACKAGE_DIR = new URL('../../flows/node-red-contrib-citysteward/', import.meta.url).pathname;
export const NODE_NAMES = ['server', 'events', 'readings', 'case', 'command'] as const;

/** node-red-node-test-helper, initialised on the node-red of package.json. */
export interface NodeRedHelper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  load(nodes: unknown[], flow: Record<string, unknown>[], credentials?: Record<string, unknown>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): NodeRedNode;
}
export interface NodeRedNode {
  on(event: string, fn: (arg: never) => void): void;
  receive(msg: Record<string, unknown>): void;
}

export function nodeRedHelper(settings?: Record<string, unknown>): { helper: NodeRedHelper; nodes: unknown[] } {
  const helper = require('node-red-node-test-helper') as NodeRedHelper;
  helper.init(require.resolve('node-red'), settings);
  return { helper, nodes: NODE_NAMES.map((n) => require(`${PACKAGE_DIR}${n}.js`)) };
}

export const PASSWORDS = {
  cloud: 'cloud-password-0001',
  nodered: 'nodered-password-0001',
  gateway: 'gateway-password-0001',
  ops: 'ops-password-000001',
};

export interface Stack {
  svc: GatewayService;
  broker: Aedes;
  cloud: Cloud;
  mqttUrl: string;
  cloudUrl: string;
  /** An integrator API token. */
  token: string;
  /** Resolves once `count` clients subscribed to `filter` (the broker granted it). */
  subscribed(filter: string, count?: number): Promise<void>;
  /** Forgets the subscriptions seen so far (call before loading a flow). */
  forget(): void;
  stop(): Promise<void>;
}

/** Broker (credentials: cloud service, nodered integrator, gw-xz-jida gateway, ops service) and cloud. */
export async function startStack(): Promise<Stack> {
  const store = CredentialStore.memory();
  store.create('cloud', 'service', PASSWORDS.cloud);
  store.create('nodered', 'integrator', PASSWORDS.nodered);
  store.create('gw-xz-jida', 'gateway', PASSWORDS.gateway);
  store.create('ops', 'service', PASSWORDS.ops);
  const logger = pino({ level: 'silent' });
  const svc = buildGatewayService({
    settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 64 * 1024 }, limits: { drainTimeoutMs: 1_000 }, allowAnonymous: false },
    credentials: store, logger,
  });
  const at = await svc.start();
  const seen = new Map<string, number>();
  const waiters: { filter: string; count: number; resolve: () => void }[] = [];
  const enough = (filter: string, count: number) => (seen.get(filter) ?? 0) >= count;
  svc.gateway.broker.on('subscribe', (subs) => {
    for (const s of subs) seen.set(s.topic, (seen.get(s.topic) ?? 0) + 1);
    for (const w of waiters.filter((x) => enough(x.filter, x.count))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const fresh = await freshDatabase('sqlite');
  const cloud = await buildCloud({ db: fresh.db, district, profiles, mqtt: { url: at.mqtt, username: 'cloud', password: PASSWORDS.cloud }, escalation: false, logger });
  await cloud.start();
  const cloudUrl = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
  const token = await cloud.tokens.create('integrator');
  return {
    svc, broker: svc.gateway.broker, cloud, mqttUrl: at.mqtt, cloudUrl, token,
    forget: () => seen.clear(),
    subscribed: (filter, count = 1) => new Promise((resolve) => (enough(filter, count) ? resolve() : waiters.push({ filter, count, resolve }))),
    async stop() {
      await cloud.stop();
      await svc.stop();
      await fresh.drop();
    },
  };
}
