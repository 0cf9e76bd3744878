/**
 * Prometheus metrics of one gateway process (prom-client), on a registry of its own so
 * that several gateways in one process (tests, the demo) never share counters.
 * Served at `/metrics` by the gateway's HTTP endpoint (admin.ts).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export type DropReason =
  | 'max-connections' | 'connection-rate' | 'packet-too-large' | 'drain-timeout'
  | 'tls-handshake' | 'protocol-error';
export type DenyKind = 'publish' | 'subscribe' | 'will' | 'forward';

export interface GatewayMetrics {
  readonly registry: Registry;
  connections: Gauge;
  connectionsTotal: Counter;
  authFailures: Counter<'code'>;
  messages: Counter<'qos'>;
  bytesIn: Counter;
  denied: Counter<'kind'>;
  drops: Counter<'reason'>;
  publishDelayed: Counter;
  streamAppends: Counter;
  streamErrors: Counter;
}

export function createGatewayMetrics(opts: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'cs_gateway_' });
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({ name: 'cs_gateway_connections', help: 'Authenticated MQTT connections open now', registers }),
    connectionsTotal: new Counter({ name: 'cs_gateway_connections_total', help: 'Authenticated MQTT connections since start', registers }),
    authFailures: new Counter({ name: 'cs_gateway_auth_failures_total', help: 'Refused CONNECTs, by error code', labelNames: ['code'], registers }),
    messages: new Counter({ name: 'cs_gateway_messages_total', help: 'Authorized PUBLISH packets and Wills, by QoS', labelNames: ['qos'], registers }),
    bytesIn: new Counter({ name: 'cs_gateway_received_bytes_total', help: 'Payload bytes of authorized PUBLISH packets', registers }),
    denied: new Counter({ name: 'cs_gateway_denied_total', help: 'Refused publish, subscribe, Will and withheld deliveries', labelNames: ['kind'], registers }),
    drops: new Counter({ name: 'cs_gateway_dropped_connections_total', help: 'Connections closed by a limit or a fault', labelNames: ['reason'], registers }),
    publishDelayed: new Counter({ name: 'cs_gateway_publish_delayed_total', help: 'PUBLISH packets held back by the per-client rate limit', registers }),
    streamAppends: new Counter({ name: 'cs_gateway_stream_appends_total', help: 'Readings appended to the Redis stream', registers }),
    streamErrors: new Counter({ name: 'cs_gateway_stream_errors_total', help: 'Readings the Redis stream refused (not acknowledged)', registers }),
  };
}
