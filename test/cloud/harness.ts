import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { buildCloud, type Cloud, type CloudOptions, type DbOptions } from '../../cloud/app.ts';
import type { CsEvent } from '../../cloud/events.ts';
import { eventually } from '../helpers/process.ts';
import { freshDatabase, syntheticDistrict, type Backend } from './fixtures.ts';

/**
 * Shared by the cloud suites that drive a started cloud through its API: the cloud on a fresh
 * database with an admin and an operator token and the events it emitted, the configuration API
 * (GET and PUT /api/config/:kind), an in-process MQTT broker on loopback, a wait for a gateway's link.
 */

/** The configuration suites' scene: Wednesday 2026-11-25, 10:00 in Zhuhai; 8 water-level points on gw-t-0. */
export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const T0 = Date.parse('2026-11-25T02:00:00Z');
export const configDistrict = syntheticDistrict(8, 1);
export const GW = 'gw-t-0';
/** An orange typhoon signal for Zhuhai (CAP). */
export const ORANGE = readFileSync(new URL('../fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8');

export interface StartedCloud {
  cloud: Cloud;
  /** Its database, for a second worker or a direct look. */
  db: DbOptions;
  admin: string;
  operator: string;
  /** Every event the cloud emitted since its start. */
  events: CsEvent[];
  /** Stops the cloud and drops its database. */
  stop(): Promise<void>;
}

/** Builds and starts a cloud on a fresh database of `backend`. */
export async function startCloud(backend: Backend, options: Omit<CloudOptions, 'db'>): Promise<StartedCloud> {
  const fresh = await freshDatabase(backend);
  let cloud: Cloud | undefined;
  try {
    cloud = await buildCloud({ ...options, db: fresh.db } as CloudOptions);
    await cloud.start();
    const admin = await cloud.tokens.create('admin');
    const operator = await cloud.tokens.create('operator');
    const events: CsEvent[] = [];
    cloud.events.subscribe((e) => events.push(e));
    const started = cloud;
    return { cloud, db: fresh.db, admin, operator, events, async stop() { await started.stop(); await fresh.drop(); } };
  } catch (err) {
    await cloud?.stop().catch(() => undefined);
    await fresh.drop();
    throw err;
  }
}

export interface ConfigDocument { version: number; document: any }

/** The configuration API of the cloud `of()` returns at each call (a suite's beforeEach replaces it). */
export function configApi(of: () => StartedCloud) {
  const get = async (kind: string, token = of().operator): Promise<ConfigDocument> => {
    const r = await of().cloud.app.inject({ url: `/api/config/${kind}`, headers: { authorization: `Bearer ${token}` } });
    if (r.statusCode !== 200) throw new Error(`GET /api/config/${kind}: ${r.statusCode} ${r.body}`);
    return r.json() as ConfigDocument;
  };
  /** PUT as admin (or `token`); the answer as it came. */
  const put = (kind: string, document: unknown, baseVersion?: number, token = of().admin) => of().cloud.app.inject({
    method: 'PUT', url: `/api/config/${kind}`, headers: { authorization: `Bearer ${token}` },
    payload: { document, ...(baseVersion !== undefined ? { baseVersion } : {}) },
  });
  /** PUT as admin; throws unless it is applied (200). */
  const putOk = async (kind: string, document: unknown, baseVersion?: number) => {
    const r = await put(kind, document, baseVersion);
    if (r.statusCode !== 200) throw new Error(`PUT /api/config/${kind}: ${r.statusCode} ${r.body}`);
    return r.json() as ConfigDocument;
  };
  return { get, put, putOk };
}

export interface TestBroker { url: string; close(): Promise<void> }

/** An in-process MQTT broker on a loopback port. */
export async function startBroker(): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits until GET /api/gateways shows `gateway` online (or offline with `online` false). */
export async function gatewayLink(cloud: Cloud, token: string, gateway: string, online = true, timeoutMs = 10_000): Promise<void> {
  await eventually(async () => {
    const list = (await cloud.app.inject({ url: '/api/gateways', headers: { authorization: `Bearer ${token}` } })).json() as { id: string; online: boolean }[];
    return list.find((g) => g.id === gateway)?.online === online;
  }, timeoutMs, 20);
}
