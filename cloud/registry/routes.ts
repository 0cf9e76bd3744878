import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@sinclair/typebox';
import type { Bus, Device, Unit } from '../../devices/district.ts';
import { CsError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { Role } from '../roles.ts';
import { CloudErrors } from '../errors.ts';
import type { Database } from '../db/database.ts';
import { iso } from '../cases/index.ts';
import { principalOf } from '../http/auth.ts';
import * as HS from '../http/schemas.ts';
import { atRows, devicesOf, importError, readCsv, readGeoJson, rowProblems, writeCsv, writeGeoJson, type ImportRow } from './bulk.ts';
import type { RegistryAudit, RegistryOp } from './log.ts';
import { create, found, putDevices, retire, update, type Kind } from './changes.ts';
import { filtered, listPage } from './list.ts';
import { deviceOfRow, type Stamped } from './store.ts';
import type { Registry } from './service.ts';
import type { Problem } from './validate.ts';
import * as R from './schemas.ts';

/**
 * The registry API (README "Device registry"): devices (list, one, create, update, move, retire, import,
 * export), gateways, buses, units and districts (list, create, update, retire). Changes: admin and operator.
 */

/** What a gateway's provisioning gives back (broker credential, edge config file); see CloudOptions.registry.provision. */
export interface Provisioned { credential?: { username: string; password: string }; edgeConfig?: string }
/** Called after a gateway is stored (cloud/registry/routes.ts): provisions its broker credential and edge config. */
export type ProvisionHook = (gatewayId: string) => Promise<Provisioned>;

export interface RegistryRouteDeps {
  registry: Registry;
  database: Database;
  logger: Logger;
  provision?: ProvisionHook;
  /** The last set-devices sent to a gateway's edge and its answer (cloud/provision/push.ts PushStatus). */
  pushStatus?: (gatewayId: string) => { revision: number; sentAt: string; outcome?: string; message?: string } | undefined;
}

const WRITERS: readonly Role[] = ['admin', 'operator'];
const SEERS: readonly Role[] = ['operator', 'commander', 'admin'];
/** A bulk import up to this size (100,000 devices as CSV are about 20 MB). */
const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

const stamps = (s: Stamped<unknown>) => ({ createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt), retiredAt: s.retiredAt === null ? null : iso(s.retiredAt) });

export function registerRegistryRoutes(root: FastifyInstance, deps: RegistryRouteDeps): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const { registry, database } = deps;
  const db = database.db;
  const log = deps.logger;
  const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, HS.ErrorReply]));

  const deviceJson = (s: Stamped<Device>): R.RegistryDevice => ({
    ...s.value, gateway: registry.rows().buses.get(s.value.bus)?.value.gateway ?? '', district: s.value.componentCode.slice(0, 6), ...stamps(s),
  });
  const who = (req: unknown, op: RegistryOp): RegistryAudit => ({ actor: principalOf(req as never).actor, op });
  const changed = (req: { method: string; url: string }, what: object) => log.info({ ...what, actor: principalOf(req as never).actor }, 'registry changed');

  // ---- devices -------------------------------------------------------------------------------

  app.get('/api/registry/devices', {
    schema: { summary: 'Registry devices, paged (limit, cursor) and filtered in the database: q, gateway, bus, unit, district, profile, status/retired', tags: ['registry'], querystring: R.DeviceListQuery, response: { 200: R.DeviceListReply, ...errors(400), ...HS.authErrors } },
  }, async (req) => {
    const page = await listPage(db, req.query, registry.rows());
    return {
      items: page.rows.map((r) => ({ ...deviceOfRow(r), gateway: r.gateway, district: r.district, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at), retiredAt: r.retired_at === null ? null : iso(r.retired_at) })),
      nextCursor: page.nextCursor,
    };
  });

  app.get('/api/registry/devices/export', {
    config: { roles: SEERS },
    schema: { summary: 'Registry devices as CSV or GeoJSON (format=csv|geojson), with the list\'s filters', tags: ['registry'], querystring: R.ExportQuery, produces: ['text/csv', 'application/geo+json'], response: { 200: { type: 'string' }, ...errors(400), ...HS.authErrors } },
  }, async (req, reply) => {
    const { format, ...f } = req.query;
    const rows = await filtered(db, f).orderBy('id').execute();
    const items = rows.map((r) => ({ device: deviceOfRow(r), gateway: r.gateway }));
    if (format === 'geojson') return reply.type('application/geo+json').header('content-disposition', 'attachment; filename="devices.geojson"').send(writeGeoJson(items));
    return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="devices.csv"').send(writeCsv(items));
  });

  app.get('/api/registry/devices/:id', {
    schema: { summary: 'One registry device (retired ones too)', tags: ['registry'], params: R.IdParam, response: { 200: R.RegistryDevice, ...errors(404), ...HS.authErrors } },
  }, async (req) => deviceJson(found<Device>(registry.rows(), 'devices', req.params.id)));

  app.post('/api/registry/devices', {
    config: { roles: WRITERS },
    schema: { summary: 'Adds a device (admin, operator): its gateway accepts its readings at once', tags: ['registry'], body: Type.Object(Type.Omit(R.RegistryDevice, ['gateway', 'district', 'createdAt', 'updatedAt', 'retiredAt']).properties, { additionalProperties: false }), response: { 201: R.RegistryDevice, ...errors(400, 409), ...HS.authErrors } },
  }, async (req, reply) => {
    const s = await registry.apply(create<Device>('devices', req.body.id, req.body as Device), who(req, 'create'));
    changed(req, { device: req.body.id, op: 'create' });
    return reply.code(201).send(deviceJson(s));
  });

  app.patch('/api/registry/devices/:id', {
    config: { roles: WRITERS },
    schema: { summary: 'Changes a device\'s fields (admin, operator); null clears an optional one', tags: ['registry'], params: R.IdParam, body: R.DevicePatch, response: { 200: R.RegistryDevice, ...errors(400, 404, 409), ...HS.authErrors } },
  }, async (req) => {
    const s = await registry.apply(update<Device>('devices', req.params.id, req.body), who(req, 'update'));
    changed(req, { device: req.params.id, op: 'update', fields: Object.keys(req.body) });
    return deviceJson(s);
  });

  app.post('/api/registry/devices/:id/move', {
    config: { roles: WRITERS },
    schema: { summary: 'Moves a device (admin, operator): to another bus (and so gateway) or unit id, other owner or maintainer unit, another place; its next case goes to its new unit', tags: ['registry'], params: R.IdParam, body: R.DeviceMove, response: { 200: R.RegistryDevice, ...errors(400, 404, 409), ...HS.authErrors } },
  }, async (req) => {
    const s = await registry.apply(update<Device>('devices', req.params.id, req.body), who(req, 'move'));
    changed(req, { device: req.params.id, op: 'move', to: req.body });
    return deviceJson(s);
  });

  app.post('/api/registry/devices/:id/retire', {
    config: { roles: WRITERS },
    schema: { summary: 'Retires a device (admin, operator): its readings are refused (retired-device); its history, readings and cases stay readable', tags: ['registry'], params: R.IdParam, response: { 200: R.RegistryDevice, ...errors(404, 409), ...HS.authErrors } },
  }, async (req) => {
    const s = await registry.apply(retire<Device>('devices', req.params.id), who(req, 'retire'));
    changed(req, { device: req.params.id, op: 'retire' });
    return deviceJson(s);
  });

  // Bulk import: the file as it is (CSV, or GeoJSON as application/geo+json or application/json).
  app.register(async (scope) => {
    scope.addContentTypeParser(['text/csv', 'application/geo+json'], { parseAs: 'string', bodyLimit: MAX_IMPORT_BYTES }, (_req, body, done) => done(null, body));
    scope.withTypeProvider<TypeBoxTypeProvider>().post('/api/registry/devices/import', {
      config: { roles: WRITERS },
      bodyLimit: MAX_IMPORT_BYTES,
      schema: {
        summary: 'Imports devices from CSV (text/csv) or GeoJSON (application/geo+json): every row checked first; one problem refuses the whole file (row, column, problem), else all applied in one transaction (admin, operator)',
        tags: ['registry'], consumes: ['text/csv', 'application/geo+json', 'application/json'], response: { 200: R.ImportReply, ...errors(400, 409, 413, 415), ...HS.authErrors },
      },
    }, async (req) => {
      const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      let rows: ImportRow[];
      if (type === 'text/csv') rows = readCsv(String(req.body));
      else {
        let body: unknown = req.body;
        if (typeof body === 'string') {
          try {
            body = JSON.parse(body);
          } catch (err) {
            throw importError([{ where: 'the file', column: '-', message: `not JSON: ${(err as Error).message}` }]);
          }
        }
        rows = readGeoJson(body);
      }
      const buses = registry.rows().buses;
      const own = rowProblems(rows, (b) => buses.get(b)?.value.gateway);
      if (own.length) throw importError(own);
      try {
        const r = await registry.apply(putDevices(devicesOf(rows)), who(req, 'import'));
        changed(req, { op: 'import', rows: rows.length, ...r });
        return { ...r, version: registry.version() };
      } catch (err) {
        const problems = (err as CsError).details?.problems as Problem[] | undefined;
        if (err instanceof CsError && problems) throw importError(atRows(rows, problems));
        throw err;
      }
    });
  });

  // ---- gateways, buses, units, districts -------------------------------------------------------

  /** List, create, update and retire routes of one kind of entity. */
  function entity<T extends { [k: string]: unknown }>(spec: {
    kind: Exclude<Kind, 'devices'>; path: string; noun: string; key: 'id' | 'county'; read: readonly Role[];
    body: TSchema; patch: TSchema; reply: TSchema; json: (s: Stamped<T>) => unknown; retireNote: string;
    created?: (s: Stamped<T>, req: never) => Promise<unknown>;
    prepare?: (body: T) => T;
  }): void {
    const params = spec.key === 'county' ? R.CountyParam : R.IdParam;
    const idOf = (p: Record<string, string>) => p[spec.key];
    app.get(`/api/registry/${spec.path}`, {
      config: { roles: spec.read },
      schema: { summary: `Registry ${spec.path}, retired ones too`, tags: ['registry'], response: { 200: R.ListOf(spec.reply), ...HS.authErrors } },
    }, async () => ({ items: [...(registry.rows()[spec.kind] as unknown as Map<string, Stamped<T>>).values()].map(spec.json) }));
    app.post(`/api/registry/${spec.path}`, {
      config: { roles: WRITERS },
      schema: { summary: `Adds a ${spec.noun} (admin, operator)`, tags: ['registry'], body: spec.body, response: { 201: spec.created ? R.GatewayCreated : spec.reply, ...errors(400, 409, 502), ...HS.authErrors } },
    }, async (req, reply) => {
      const body = (spec.prepare ? spec.prepare(req.body as T) : req.body) as T;
      const s = await registry.apply(create<T>(spec.kind, String(body[spec.key]), body), who(req, 'create'));
      changed(req, { [spec.noun]: body[spec.key], op: 'create' });
      return reply.code(201).send(spec.created ? await spec.created(s, req as never) : spec.json(s));
    });
    app.patch(`/api/registry/${spec.path}/:${spec.key}`, {
      config: { roles: WRITERS },
      schema: { summary: `Changes a ${spec.noun} (admin, operator)`, tags: ['registry'], params, body: spec.patch, response: { 200: spec.reply, ...errors(400, 404, 409), ...HS.authErrors } },
    }, async (req) => {
      const id = idOf(req.params as Record<string, string>);
      const s = await registry.apply(update<T>(spec.kind, id, req.body as Record<string, unknown>), who(req, 'update'));
      changed(req, { [spec.noun]: id, op: 'update' });
      return spec.json(s);
    });
    app.post(`/api/registry/${spec.path}/:${spec.key}/retire`, {
      config: { roles: WRITERS },
      schema: { summary: `Retires a ${spec.noun} (admin, operator); ${spec.retireNote}`, tags: ['registry'], params, response: { 200: spec.reply, ...errors(400, 404, 409), ...HS.authErrors } },
    }, async (req) => {
      const id = idOf(req.params as Record<string, string>);
      const s = await registry.apply(retire<T>(spec.kind, id), who(req, 'retire'));
      changed(req, { [spec.noun]: id, op: 'retire' });
      return spec.json(s);
    });
  }

  const gatewayJson = (s: Stamped<{ id: string; name: string }>) => {
    const g = registry.gateway(s.value.id);
    return { ...s.value, buses: g?.buses.length ?? 0, devices: g?.devices.length ?? 0, ...stamps(s) };
  };
  entity<{ id: string; name: string }>({
    kind: 'gateways', path: 'gateways', noun: 'gateway', key: 'id', read: SEERS, body: R.GatewayBody, patch: R.GatewayPatch, reply: R.RegistryGateway,
    json: gatewayJson, retireNote: 'refused while a bus in service is on it',
    // The provisioning hook (CloudOptions.registry.provision): the broker credential and the edge config file.
    created: async (s) => {
      if (!deps.provision) return { gateway: gatewayJson(s) };
      try {
        return { gateway: gatewayJson(s), ...await deps.provision(s.value.id) };
      } catch (err) {
        log.error({ err, gateway: s.value.id }, 'gateway provisioning failed');
        if (err instanceof CsError) throw err;
        throw new CsError(CloudErrors.REGISTRY_PROVISION_FAILED, `gateway ${s.value.id} was added, but its provisioning failed: ${(err as Error).message}`);
      }
    },
  });
  app.get('/api/registry/gateways/:id/config', {
    config: { roles: SEERS },
    schema: { summary: 'A gateway\'s buses and devices in service, as its edge polls them', tags: ['registry'], params: R.IdParam, response: { 200: R.GatewayConfigReply, ...errors(404), ...HS.authErrors } },
  }, async (req) => {
    const g = registry.gateway(req.params.id);
    if (!g) throw new CsError(CloudErrors.REGISTRY_NOT_FOUND, `no gateway "${req.params.id}" in service`);
    const push = deps.pushStatus?.(req.params.id);
    return { ...g, version: registry.version(), ...(push ? { push } : {}) };
  });
  entity<Bus>({
    kind: 'buses', path: 'buses', noun: 'bus', key: 'id', read: SEERS, body: R.BusBody, patch: R.BusPatch, reply: R.RegistryBus,
    json: (s) => ({ ...s.value, ...stamps(s) }), retireNote: 'refused while a device in service is on it',
    prepare: (b) => ({ ...b, host: b.host ?? '127.0.0.1', timeoutMs: b.timeoutMs ?? 1000 }),
  });
  entity<Unit>({
    kind: 'units', path: 'units', noun: 'unit', key: 'id', read: HS_ANY, body: R.UnitBody, patch: R.UnitPatch, reply: R.RegistryUnit,
    json: (s) => ({ ...s.value, ...stamps(s) }), retireNote: 'refused while a device in service, a routing rule or a category names it',
  });
  entity<{ county: string; name: string }>({
    kind: 'districts', path: 'districts', noun: 'district', key: 'county', read: HS_ANY, body: R.DistrictBody, patch: R.DistrictPatch, reply: R.RegistryDistrict,
    json: (s) => ({ ...s.value, ...stamps(s) }), retireNote: 'refused while a device in service has its county code',
  });
}

const HS_ANY: readonly Role[] = ['admin', 'operator', 'commander', 'verifier', 'crew', 'integrator', 'inspector'];
