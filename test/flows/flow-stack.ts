import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Server } from 'node:net';
import type { Aedes } from 'aedes';
import pino from 'pino';
import { CredentialStore } from '../../gateway/credentials.ts';
import { buildGatewayService } from '../../gateway/service.ts';
import { buildCloud, type Cloud, type CloudOptions } from '../../cloud/app.ts';
import { district, freshDatabase, profiles } from '../cloud/fixtures.ts';

/**
 * What the shipped flows' tests run on (flows/flows/*.json): a real cloud with its HTTP API and the
 * CitySteward broker (ACLs on; identities `cloud` and the read-only integrator `nodered`) on loopback, Node-RED's runtime through node-red-node-test-helper with the
 * core nodes the flows use, its HTTP-in routes served on a port of their own, and small HTTP receivers
 * standing in for the outside world (feeds, robots, gateways). `close()` stops everything in order.
 */

const require = createRequire(import.meta.url);
type NodeModule = (RED: unknown) => void;
interface Helper {
  init(runtimePath: string, settings?: Record<string, unknown>): void;
  load(nodes: NodeModule[], flow: object[], credentials?: Record<string, unknown>): Promise<void>;
  unload(): Promise<void>;
  getNode(id: string): { on(ev: string, fn: (msg: Record<string, unknown>) => void): void; receive(msg: object): void } | null;
}
export const helper = require('node-red-node-test-helper') as Helper;
// As citysteward flows runs Node-RED: function nodes may load no module.
helper.init(require.resolve('node-red'), { logging: { console: { level: 'off' } }, functionExternalModules: false });

const CORE = {
  inject: 'common/20-inject.js', debug: 'common/21-debug.js', catch: 'common/25-catch.js', function: 'function/10-function.js',
  switch: 'function/10-switch.js', change: 'function/15-change.js', template: 'function/80-template.js', json: 'parsers/70-JSON.js',
  'http in': 'network/21-httpin.js', 'http request': 'network/21-httprequest.js', mqtt: 'network/10-mqtt.js', file: 'storage/10-file.js',
};
export const coreNodes: NodeModule[] = [...new Set(Object.values(CORE))].map((p) => require(`@node-red/nodes/core/${p}`) as NodeModule);

export type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string };

/** A shipped flow's JSON (flows/flows/NAME.json). */
export function shippedFlow(name: string): FlowNode[] {
  return JSON.parse(readFileSync(new URL(`../../flows/flows/${name}.json`, import.meta.url), 'utf8')) as FlowNode[];
}

/** Sets environment variables on the flow's tab (what an operator sets in the tab's properties). */
export function withEnv(flow: FlowNode[], env: Record<string, string>): FlowNode[] {
  return flow.map((n) => (n.type === 'tab' ? { ...n, env: Object.entries(env).map(([name, value]) => ({ name, value, type: 'str' })) } : n));
}

export interface Received { method: string; url: string; headers: IncomingMessage['headers']; body: string }

/** An HTTP server on loopback that records requests and answers with `answer` (200 `{}` by default). */
export async function receiver(answer?: (r: Received) => { status?: number; type?: string; body: string } | undefined): Promise<{ url: string; requests: Received[]; close(): Promise<void> }> {
  const requests: Received[] = [];
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      requests.push(r);
      const a = answer?.(r) ?? { body: '{}', type: 'application/json' };
      res.writeHead(a.status ?? 200, { 'content-type': a.type ?? 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => closeServer(server) };
}

const closeServer = (s: HttpServer | Server) => new Promise<void>((resolve) => s.close(() => resolve()));

export interface Stack {
  cloud: Cloud;
  /** The cloud's HTTP API. */
  base: string;
  mqttUrl: string;
  broker: Aedes;
  /** The integrator's MQTT identity (read-only). */
  mqttUser: { username: string; password: string };
  token(role: string, unit?: string): Promise<string>;
  /** Loads a flow into Node-RED (with extra node modules, e.g. the citysteward nodes) and serves its HTTP-in routes. */
  load(flow: FlowNode[], credentials?: Record<string, unknown>, nodes?: NodeModule[]): Promise<{ url: string }>;
  /** A node of the loaded flow (throws when absent). */
  getNode(id: string): NonNullable<ReturnType<Helper['getNode']>>;
  close(): Promise<void>;
}

export async function startStack(opts: Partial<CloudOptions> = {}): Promise<Stack> {
  const fresh = await freshDatabase('sqlite');
  const store = CredentialStore.memory();
  store.create('cloud', 'service', 'cloud-password-0001');
  store.create('nodered', 'integrator', 'nodered-password-0001');
  const logger = pino({ level: 'silent' });
  const svc = buildGatewayService({
    settings: { mqtt: { host: '127.0.0.1', port: 0, maxPacketSizeBytes: 64 * 1024 }, limits: { drainTimeoutMs: 1_000 }, allowAnonymous: false }, credentials: store, logger,
  });
  const mqttUrl = (await svc.start()).mqtt;
  const cloud = await buildCloud({ db: fresh.db, district, profiles, mqtt: { url: mqttUrl, username: 'cloud', password: 'cloud-password-0001' }, escalation: false, logger, ...opts });
  await cloud.start();
  const base = await cloud.app.listen({ host: '127.0.0.1', port: 0 });
  let nodeServer: HttpServer | undefined;
  let loaded = false;
  return {
    cloud, base, mqttUrl, broker: svc.gateway.broker, mqttUser: { username: 'nodered', password: 'nodered-password-0001' },
    token: (role, unit) => cloud.tokens.create(role as never, unit),
    async load(flow, credentials = {}, nodes = []) {
      let httpNode: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
      const capture: NodeModule = (RED) => { httpNode = (RED as { httpNode: typeof httpNode }).httpNode; };
      await helper.load([capture, ...coreNodes, ...nodes], flow, credentials);
      loaded = true;
      nodeServer = createHttpServer((req, res) => httpNode!(req, res));
      await new Promise<void>((resolve) => nodeServer!.listen(0, '127.0.0.1', resolve));
      return { url: `http://127.0.0.1:${(nodeServer.address() as AddressInfo).port}` };
    },
    getNode(id) {
      const n = helper.getNode(id);
      if (!n) throw new Error(`no node ${id} in the loaded flow`);
      return n;
    },
    async close() {
      if (loaded) await helper.unload();
      if (nodeServer) await closeServer(nodeServer);
      await cloud.stop();
      await svc.stop();
      await fresh.drop();
    },
  };
}
