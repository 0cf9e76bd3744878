/** Error codes of edge/ (the gateway process: config, Modbus buses, MQTT, commands). */
export const EdgeErrors = {
  /** The edge config file failed its cross-references (unknown profile or bus, duplicates). */
  CONFIG_INVALID: 'CS_EDGE_CONFIG_INVALID',
  /** A bus connection could not be opened (refused, unreachable, timed out). */
  BUS_OPEN: 'CS_EDGE_BUS_OPEN',
  /** A bus is waiting before its next reopen attempt; requests fail fast meanwhile. */
  BUS_DOWN: 'CS_EDGE_BUS_DOWN',
  /** A bus was closed (stop()) while a request was queued or in flight. */
  BUS_CLOSED: 'CS_EDGE_BUS_CLOSED',
  /** A Modbus request failed: timeout, exception code, broken connection. */
  READ_FAILED: 'CS_EDGE_READ_FAILED',
  /** Registers came back but a point could not be decoded. */
  DECODE_FAILED: 'CS_EDGE_DECODE_FAILED',
  /** The sequence file is unreadable or corrupt. */
  SEQ_STORE: 'CS_EDGE_SEQ_STORE',
  /** The broker refused the gateway's credentials. */
  MQTT_AUTH: 'CS_EDGE_MQTT_AUTH',
  /** A publish failed or the client ended before its PUBACK. */
  MQTT_PUBLISH: 'CS_EDGE_MQTT_PUBLISH',
  /** start() called twice, or pollNow() before start(). */
  STATE: 'CS_EDGE_STATE',
  /** The outbox database cannot be opened or written: readings are not accepted. */
  OUTBOX: 'CS_EDGE_OUTBOX',
  /** The persisted mode file is unreadable. */
  MODE_STORE: 'CS_EDGE_MODE_STORE',
  /** A command was rejected: unknown type, expired, invalid arguments. */
  CMD_REJECTED: 'CS_EDGE_CMD_REJECTED',
} as const;
export type EdgeErrorCode = (typeof EdgeErrors)[keyof typeof EdgeErrors];
