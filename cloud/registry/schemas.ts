import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Bus, Device, Unit, type Scenario } from '../../devices/district.ts';
import { ID_PATTERN } from '../../lib/topics.ts';

/** TypeBox schemas of the registry API (README "Device registry"): bodies, queries and answers. */

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Iso = (description: string) => Type.String({ format: 'date-time', description });
const Id = Type.String({ pattern: ID_PATTERN });

export const Stamps = {
  createdAt: Iso('when the registry first held it'),
  updatedAt: Iso('its last change'),
  retiredAt: Nullable(Iso('when it was retired (null: in service)')),
};

export const RegistryDevice = Type.Object({
  ...Device.properties,
  gateway: Type.String({ description: "its bus's gateway" }),
  district: Type.String({ description: 'county code: the first 6 digits of the component code' }),
  ...Stamps,
});
export type RegistryDevice = Static<typeof RegistryDevice>;

export const DEVICE_LIST_STATUSES = ['active', 'retired', 'any'] as const;

export const DeviceListQuery = Type.Object({
  q: Type.Optional(Type.String({ maxLength: 100, description: 'substring of the id, name, address or component code (case-insensitive)' })),
  gateway: Type.Optional(Type.String({ maxLength: 64 })),
  bus: Type.Optional(Type.String({ maxLength: 64 })),
  unit: Type.Optional(Type.String({ maxLength: 64, description: 'owner or maintainer unit' })),
  district: Type.Optional(Type.String({ maxLength: 16, description: 'county code' })),
  profile: Type.Optional(Type.String({ maxLength: 64 })),
  status: Type.Optional(Type.Union(DEVICE_LIST_STATUSES.map((s) => Type.Literal(s)), { description: 'active (default): in service; retired; any' })),
  retired: Type.Optional(Type.Boolean({ description: 'true: retired only (status=retired); false: in service only' })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
}, { additionalProperties: false });
export type DeviceListQuery = Static<typeof DeviceListQuery>;

export const DeviceListReply = Type.Object({
  items: Type.Array(RegistryDevice),
  nextCursor: Nullable(Type.String({ description: 'pass as cursor for the next page; null on the last page' })),
});

export const ExportQuery = Type.Object({
  ...Type.Omit(DeviceListQuery, ['limit', 'cursor']).properties,
  format: Type.Union([Type.Literal('csv'), Type.Literal('geojson')], { default: 'csv' }),
}, { additionalProperties: false });

/** A device's fields that may change (all but the id); null clears an optional one. */
export const DevicePatch = Type.Object({
  profile: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  componentCode: Type.Optional(Device.properties.componentCode),
  lat: Type.Optional(Device.properties.lat),
  lon: Type.Optional(Device.properties.lon),
  address: Type.Optional(Nullable(Type.String())),
  grid: Type.Optional(Nullable(Type.String())),
  ownerUnit: Type.Optional(Id),
  maintainerUnit: Type.Optional(Id),
  bus: Type.Optional(Id),
  unitId: Type.Optional(Device.properties.unitId),
  pollMs: Type.Optional(Nullable(Type.Integer({ minimum: 100 }))),
  // Checked with the whole device after the merge (a default inside a nullable union is not allowed here).
  scenario: Type.Optional(Nullable(Type.Unsafe<Scenario>({ type: 'object', description: "the simulator's scenario (Device.scenario)" }))),
}, { additionalProperties: false, minProperties: 1 });
export type DevicePatch = Static<typeof DevicePatch>;

/** A move: to another gateway (through one of its buses, with a unit id free there), other units, another place. */
export const DeviceMove = Type.Object({
  bus: Type.Optional(Id),
  unitId: Type.Optional(Device.properties.unitId),
  ownerUnit: Type.Optional(Id),
  maintainerUnit: Type.Optional(Id),
  lat: Type.Optional(Device.properties.lat),
  lon: Type.Optional(Device.properties.lon),
  address: Type.Optional(Nullable(Type.String())),
  grid: Type.Optional(Nullable(Type.String())),
}, { additionalProperties: false, minProperties: 1 });

export const GatewayBody = Type.Object({ id: Id, name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export const GatewayPatch = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export const RegistryGateway = Type.Object({ id: Type.String(), name: Type.String(), buses: Type.Integer(), devices: Type.Integer(), ...Stamps });

/** What creating a gateway answers: the gateway and, when the cloud provisions gateways, its credential and edge config. */
export const GatewayCreated = Type.Object({
  gateway: RegistryGateway,
  credential: Type.Optional(Type.Object({ username: Type.String(), password: Type.String() }, { description: "the broker credential for the gateway's edge (shown once)" })),
  edgeConfig: Type.Optional(Type.String({ description: "a ready edge config file (YAML) for the gateway" })),
});

export const GatewayConfigReply = Type.Object({
  gateway: Type.Object({ id: Type.String(), name: Type.String() }),
  buses: Type.Array(Bus),
  devices: Type.Array(Device),
  version: Type.Integer({ description: "the registry's version this was read at" }),
  /** The last set-devices this worker sent the gateway's edge and what it answered (cloud/provision/push.ts); absent when none. */
  push: Type.Optional(Type.Object({
    revision: Type.Integer(),
    sentAt: Type.String({ format: 'date-time' }),
    outcome: Type.Optional(Type.String({ description: 'ok, rejected or failed as the edge acknowledged; not-sent when too large for one command; absent while unacknowledged' })),
    message: Type.Optional(Type.String()),
  })),
});

export const BusBody = Bus;
export const BusPatch = Type.Object({
  host: Type.Optional(Bus.properties.host),
  port: Type.Optional(Bus.properties.port),
  timeoutMs: Type.Optional(Bus.properties.timeoutMs),
}, { additionalProperties: false, minProperties: 1 });
export const RegistryBus = Type.Object({ ...Type.Required(Bus).properties, ...Stamps });

export const UnitBody = Unit;
export const UnitPatch = Type.Object({
  name: Type.Optional(Type.String()),
  dutyContact: Type.Optional(Nullable(Type.String())),
}, { additionalProperties: false, minProperties: 1 });
export const RegistryUnit = Type.Object({ ...Unit.properties, ...Stamps });

export const DistrictBody = Type.Object({
  county: Type.String({ pattern: '^[0-9]{6}$', description: '6-digit administrative division code' }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
}, { additionalProperties: false });
export const DistrictPatch = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });
export const RegistryDistrict = Type.Object({ ...DistrictBody.properties, ...Stamps });

export const ListOf = <T extends TSchema>(t: T) => Type.Object({ items: Type.Array(t) });
export const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const CountyParam = Type.Object({ county: Type.String({ minLength: 1, maxLength: 16 }) });

export const ImportReply = Type.Object({
  created: Type.Integer(), updated: Type.Integer(), unchanged: Type.Integer(),
  version: Type.Integer({ description: "the registry's version after the import" }),
});
