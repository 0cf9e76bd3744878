/** MQTT throughput and latency: publishers and one subscriber, each set in child processes. */
import type { Broker } from './brokers.ts';
import type { Job, QoS, SubResult } from './client-worker.ts';
import { ALL_UP, GATEWAY_COUNT, SERVICE, account, gatewayName, upTopic } from './identities.ts';
import { Worker, all } from './ipc.ts';

export interface MqttCase {
  name: string;
  qos: QoS;
  publishers: number;
  /** Client processes the publishers are spread over. */
  pubProcesses: number;
  perPublisher: number;
  /** Unacknowledged messages allowed per publisher. */
  window: number;
  /** Messages per second per publisher; undefined: as fast as the window allows. */
  rate?: number;
  /** Subscription of the single subscriber. */
  filter: string;
}

export interface MqttResult {
  expected: number;
  received: number;
  msgPerSec: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * 1 -> 1 on one topic and 100 gateways -> 1 wildcard subscriber, QoS 0 and 1, at full speed
 * (1,000 messages in flight in total); then fan-in paced at 10,000 msg/s for latency below saturation.
 */
export function mqttCases(quick: boolean): MqttCase[] {
  const total = quick ? 5_000 : 200_000;
  const cases: MqttCase[] = [];
  for (const qos of [0, 1] as const) {
    cases.push({ name: `1 publisher -> 1 subscriber, QoS ${qos}`, qos, publishers: 1, pubProcesses: 1, perPublisher: total, window: 1000, filter: upTopic(gatewayName(0)) });
  }
  for (const qos of [0, 1] as const) {
    cases.push({
      name: `fan-in ${GATEWAY_COUNT} publishers -> 1 wildcard subscriber, QoS ${qos}`, qos,
      publishers: GATEWAY_COUNT, pubProcesses: 2, perPublisher: total / GATEWAY_COUNT, window: 10, filter: ALL_UP,
    });
  }
  const paced = quick ? 2_000 : 100_000; // 10 s at 10,000 msg/s
  for (const qos of [0, 1] as const) {
    cases.push({
      name: `fan-in ${GATEWAY_COUNT} publishers -> 1 wildcard subscriber, QoS ${qos}, paced at ${(GATEWAY_COUNT * 100).toLocaleString('en-US')} msg/s`, qos,
      publishers: GATEWAY_COUNT, pubProcesses: 2, perPublisher: paced / GATEWAY_COUNT, window: 10, rate: 100, filter: ALL_UP,
    });
  }
  return cases;
}

export async function runMqttCase(broker: Broker, c: MqttCase): Promise<MqttResult> {
  const expected = c.publishers * c.perPublisher;
  const sub = new Worker('client-worker.ts');
  const pubs = Array.from({ length: c.pubProcesses }, () => new Worker('client-worker.ts'));
  try {
    sub.send({ type: 'start', role: 'sub', url: broker.url, account: account(SERVICE), topic: c.filter, qos: c.qos, expected } satisfies Job & { type: string });
    await sub.next('ready');
    pubs.forEach((w, p) => {
      const accounts = [];
      for (let i = p; i < c.publishers; i += c.pubProcesses) accounts.push(account(gatewayName(i)));
      w.send({ type: 'start', role: 'pub', url: broker.url, accounts, qos: c.qos, count: c.perPublisher, window: c.window, rate: c.rate } satisfies Job & { type: string });
    });
    await all(pubs, (w) => w.next('ready'));
    pubs.forEach((w) => w.send({ type: 'go' }));
    const done = await all(pubs, (w) => w.next<{ type: string; errors: number }>('done', 300_000));
    sub.send({ type: 'drain' });
    const r = await sub.next<SubResult & { type: string }>('result', 300_000);
    const seconds = (r.lastReceived - r.firstSent) / 1000;
    return {
      expected, received: r.received, msgPerSec: r.received > 0 ? r.received / seconds : 0,
      p50: r.p50, p99: r.p99, errors: done.reduce((n, d) => n + d.errors, 0),
    };
  } finally {
    await all([sub, ...pubs], (w) => w.stop());
  }
}
