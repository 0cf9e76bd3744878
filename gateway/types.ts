/** Options, answers and the handle of the broker (gateway.ts assembles it). */
import type { Aedes, Client } from 'aedes';
import type { Logger } from '../lib/log.ts';
import type { CredentialStore, Identity } from './credentials.ts';
import type { LoginGuardOptions } from './login-guard.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface GatewayOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; 0 (the default) picks any free port. */
  port?: number;
  credentials: CredentialStore;
  logger?: Logger;
  /** Largest MQTT packet accepted, header included; default 256 KiB. */
  maxPacketSize?: number;
  /** Aedes drainTimeout: ms a frozen subscriber may block before it is disconnected; default 60 s. */
  drainTimeout?: number;
  /** Watch the credentials file and apply changes made by other processes; default true for a file store. */
  watchCredentials?: boolean;
  /**
   * Called for every authorized PUBLISH (and Will) before it is acknowledged and routed;
   * a rejection refuses the message (no PUBACK, connection closed, the client resends).
   */
  onPublishAuthorized?: (identity: Identity, topic: string, payload: Buffer) => Promise<void>;
  /** Password checks: concurrency, queue and slow-down after failures (login-guard.ts); defaults when omitted. */
  logins?: LoginGuardOptions;
  /** Connection and publish limits; each is off when omitted. */
  limits?: GatewayLimits;
  /** A TLS listener beside the plain one. */
  tls?: GatewayTlsOptions;
  /** Development only: accept CONNECTs without credentials as the `anonymous` identity. */
  allowAnonymous?: boolean;
  /** Shared persistence and emitter (cluster.ts); memory when omitted. The gateway does not close them. */
  cluster?: { persistence: unknown; mq: unknown };
  /** Aedes broker id (default: a random UUID). */
  brokerId?: string;
  /** Prometheus counters (metrics.ts); kept in memory only when omitted. */
  metrics?: GatewayMetrics;
  /** Warning lines per source (username or address): `max` per `windowMs`, then a count (default 5 per 10 s). */
  warnLimit?: Partial<{ windowMs: number; max: number }>;
  /** Clock for the rate limits, ms. */
  now?: () => number;
}

export interface GatewayLimits {
  /** Sockets open at once over all listeners (authenticated or not). */
  maxConnections?: number;
  /** New sockets accepted per second over all listeners, with a burst of connectionBurst. */
  connectionsPerSecond?: number;
  connectionBurst?: number;
  /** PUBLISH packets per second per client, with a burst of publishBurst; excess is delayed. */
  publishesPerSecond?: number;
  publishBurst?: number;
}

export interface GatewayTlsOptions {
  host?: string;
  /** Port of the TLS listener; 0 = any free port. */
  port?: number;
  /** PEM server certificate chain and private key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle that client certificates must chain to (needed for clientCerts). */
  ca?: string | Buffer;
  /** 'none' (default): password only; 'optional': a certificate or a password; 'required': a certificate. */
  clientCerts?: 'none' | 'optional' | 'required';
}

export interface GatewayStats {
  /** Authenticated connections now open. */
  connections: number;
  /** Refused CONNECTs since start. */
  authFailures: number;
  /** Refused PUBLISH, SUBSCRIBE, Will and deliveries since start. */
  denied: number;
  /** Authorized PUBLISH packets (and Wills) since start. */
  messages: number;
  /** Connections closed by a limit or a fault (too large, frozen, over a connection limit). */
  dropped: number;
}

export interface GatewayAddress {
  host: string;
  port: number;
  /** The TLS listener's port, when one is configured. */
  tlsPort?: number;
}

export interface Gateway {
  start(): Promise<GatewayAddress>;
  stop(): Promise<void>;
  /** The bound port (after start). */
  readonly port: number;
  /** The bound TLS port (after start), undefined without TLS. */
  readonly tlsPort: number | undefined;
  /** The Aedes instance (after start). */
  readonly broker: Aedes;
  stats(): GatewayStats;
  /** The identity an authenticated client connected with. */
  identityOf(client: Client): Identity | undefined;
}

export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024;

/** MQTT CONNACK return codes (3.1.1, table 3.1). */
export const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

/** The identity of CONNECTs without credentials when allowAnonymous is on (development only). */
export const ANONYMOUS: Identity = Object.freeze({ username: 'anonymous', role: 'anonymous', createdAt: new Date(0).toISOString() });
