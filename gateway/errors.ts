/**
 * Codes of the gateway package (credential store, ACL, MQTT broker).
 * A code is stable and greppable; the message says what went wrong in words.
 */
export const GatewayErrors = {
  /** The credentials file cannot be read (permissions, a directory, I/O). */
  CREDENTIALS_READ: 'CS_GW_CREDENTIALS_READ',
  /** The credentials file is not valid JSON or does not match the schema: refused, never overwritten. */
  CREDENTIALS_CORRUPT: 'CS_GW_CREDENTIALS_CORRUPT',
  /** The credentials file could not be written (temp file + rename). */
  CREDENTIALS_WRITE: 'CS_GW_CREDENTIALS_WRITE',
  /** A username outside ID_PATTERN, or a reserved one (`events`). */
  USERNAME_INVALID: 'CS_GW_USERNAME_INVALID',
  /** `create` of a username the store already holds (revoked entries stay, for audit). */
  USER_EXISTS: 'CS_GW_USER_EXISTS',
  /** `rotate` / `revoke` of a username the store does not hold. */
  USER_UNKNOWN: 'CS_GW_USER_UNKNOWN',
  /** `rotate` of a revoked username. */
  USER_REVOKED: 'CS_GW_USER_REVOKED',
  /** A role other than `gateway` or `service`. */
  ROLE_INVALID: 'CS_GW_ROLE_INVALID',
  /** A chosen password shorter than MIN_PASSWORD_LENGTH. */
  PASSWORD_WEAK: 'CS_GW_PASSWORD_WEAK',
  /** `credential import`: a file with bad lines (each named); nothing was imported. */
  IMPORT_INVALID: 'CS_GW_IMPORT_INVALID',

  /** CONNECT with an empty client id and CleanSession 0, or an empty id in MQTT 3.1 (CONNACK 2, MQTT-3.1.3-8). */
  CLIENT_ID_REJECTED: 'CS_GW_CLIENT_ID_REJECTED',
  /** CONNECT without username or password (CONNACK 4). */
  AUTH_MISSING: 'CS_GW_AUTH_MISSING',
  /** CONNECT with an unknown, wrong or revoked credential (CONNACK 5). */
  AUTH_FAILED: 'CS_GW_AUTH_FAILED',
  /** CONNECT from a username or address locked after repeated failures (CONNACK 5, no password check). */
  AUTH_THROTTLED: 'CS_GW_AUTH_THROTTLED',
  /** CONNECT while the password-check queue is full (CONNACK 3, server unavailable: retry later). */
  AUTH_BUSY: 'CS_GW_AUTH_BUSY',
  /** CONNECT whose Will topic is outside the identity's publish ACL (CONNACK 5). */
  WILL_DENIED: 'CS_GW_WILL_DENIED',
  /** PUBLISH outside the identity's ACL: the connection is closed (MQTT-3.3.5-2). */
  PUBLISH_DENIED: 'CS_GW_PUBLISH_DENIED',
  /** The in-process ingest hook refused or failed: no PUBACK, connection closed, the client resends. */
  INGEST_FAILED: 'CS_GW_INGEST_FAILED',
  /** An MQTT packet larger than maxPacketSize: the connection is closed before the payload is buffered. */
  PACKET_TOO_LARGE: 'CS_GW_PACKET_TOO_LARGE',

  /** A client certificate that does not verify against tls.ca, or has no subject CN: the socket is closed. */
  CERT_INVALID: 'CS_GW_CERT_INVALID',
  /** CONNECT whose username differs from its verified certificate's subject CN (CONNACK 5). */
  CERT_MISMATCH: 'CS_GW_CERT_MISMATCH',
  /** TLS options that cannot work (client certificates without a CA, a TLS file that cannot be read). */
  TLS_CONFIG: 'CS_GW_TLS_CONFIG',
  /** The admin API: missing or wrong bearer token. */
  ADMIN_UNAUTHORIZED: 'CS_GW_ADMIN_UNAUTHORIZED',
  /** The admin API: a request body or parameter that fails its schema. */
  ADMIN_BAD_REQUEST: 'CS_GW_ADMIN_BAD_REQUEST',
  /** Redis (cluster state or the readings stream) cannot be reached at start. */
  REDIS_UNAVAILABLE: 'CS_GW_REDIS_UNAVAILABLE',
  /** The readings stream was started with another partition count (docs/architecture.md#partitions). */
  STREAM_PARTITIONS: 'CS_GW_STREAM_PARTITIONS',

  /** `broker` or `port` read before start(), or start() called twice. */
  NOT_STARTED: 'CS_GW_NOT_STARTED',
  ALREADY_STARTED: 'CS_GW_ALREADY_STARTED',
} as const;

export type GatewayErrorCode = (typeof GatewayErrors)[keyof typeof GatewayErrors];
