import { Type, type Static } from '@sinclair/typebox';

/**
 * Config files of the services started by the command line (YAML, validated; a bad file
 * names the key, the problem and the file). Command-line flags override file values.
 */

export const GatewayServiceConfig = Type.Object({
  mqtt: Type.Object({
    host: Type.String({ default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
    maxPacketSizeBytes: Type.Integer({ minimum: 1024, default: 262144 }),
  }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type GatewayServiceConfig = Static<typeof GatewayServiceConfig>;

export const CloudServiceConfig = Type.Object({
  /** The device registry: devices, buses, gateways and units. */
  district: Type.String({ minLength: 1 }),
  /** Extra profile directory; the built-in profiles are always loaded. */
  profiles: Type.Optional(Type.String()),
  http: Type.Object({
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  }, { additionalProperties: false, default: {} }),
  /** SQLite file (relative to the data directory) or a PostgreSQL URL. */
  database: Type.Object({
    kind: Type.Union([Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'sqlite' }),
    file: Type.String({ default: 'citysteward.db' }),
    url: Type.Optional(Type.String()),
  }, { additionalProperties: false, default: {} }),
  mqtt: Type.Object({
    url: Type.String({ pattern: '^mqtts?://' }),
    username: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1 }),
  }, { additionalProperties: false }),
}, { additionalProperties: false });
export type CloudServiceConfig = Static<typeof CloudServiceConfig>;

export const DemoConfig = Type.Object({
  district: Type.Optional(Type.String()),
  httpPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  mqttPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
}, { additionalProperties: false });
export type DemoConfig = Static<typeof DemoConfig>;
