/** Markdown tables: ours next to Mosquitto, with the ratio ours / Mosquitto. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import type { ConnResult } from './conn-bench.ts';
import type { MqttCase, MqttResult } from './mqtt-bench.ts';
import { mosquittoVersion } from './brokers.ts';

type Row = [label: string, ours: number, mosquitto: number, digits: number];

const fmt = (n: number, digits: number): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';

function table(rows: Row[], extra: string[][] = []): string {
  const lines = ['| | ours | Mosquitto | ours / Mosquitto |', '|---|---:|---:|---:|'];
  for (const [label, a, b, d] of rows) lines.push(`| ${label} | ${fmt(a, d)} | ${fmt(b, d)} | ${fmt(a / b, 2)} |`);
  for (const cells of extra) lines.push(`| ${cells.join(' | ')} |`);
  return lines.join('\n');
}

export function mqttSection(c: MqttCase, ours: MqttResult, mosq: MqttResult): string {
  return [
    `### ${c.name}`, '',
    `${(c.publishers * c.perPublisher).toLocaleString('en-US')} messages, ${c.rate ? `${c.rate} msg/s per publisher` : 'as fast as possible'},`
      + ` at most ${c.window} unacknowledged per publisher.`, '',
    table([
      ['throughput (msg/s)', ours.msgPerSec, mosq.msgPerSec, 0],
      ['latency p50 (ms)', ours.p50, mosq.p50, 2],
      ['latency p99 (ms)', ours.p99, mosq.p99, 2],
    ], [['delivered', `${ours.received} / ${ours.expected}`, `${mosq.received} / ${mosq.expected}`, '']]),
    '',
  ].join('\n');
}

export function connSection(ours: ConnResult, mosq: ConnResult): string {
  const mib = (kib: number): number => kib / 1024;
  return [
    `### ${ours.target.toLocaleString('en-US')} idle authenticated connections`, '',
    table([
      ['broker RSS at start (MiB)', mib(ours.rssStartKiB), mib(mosq.rssStartKiB), 1],
      ['broker RSS after auth warm-up (MiB)', mib(ours.rssBeforeKiB), mib(mosq.rssBeforeKiB), 1],
      [`broker RSS with ${ours.target.toLocaleString('en-US')} connected (MiB)`, mib(ours.rssAfterKiB), mib(mosq.rssAfterKiB), 1],
      ['memory per connection, from warm (KiB)', ours.perConnection / 1024, mosq.perConnection / 1024, 2],
      ['memory per connection, from start (KiB)', (ours.rssAfterKiB - ours.rssStartKiB) / ours.connected,
        (mosq.rssAfterKiB - mosq.rssStartKiB) / mosq.connected, 2],
      ['time to connect all (s)', ours.connectSeconds, mosq.connectSeconds, 1],
    ], [['connected', `${ours.connected} / ${ours.target}`, `${mosq.connected} / ${mosq.target}`, '']]),
    '',
  ].join('\n');
}

export function machine(): string {
  const version = (pkg: string): string =>
    (JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  return [
    `- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- CPU: ${availableParallelism()} cores (nproc), ${cpus()[0]?.model ?? 'unknown'}; Linux ${kernel}`,
    `- Node ${process.version}; aedes ${version('aedes')}; mqtt.js ${version('mqtt')} (protocolVersion 4)`,
    `- Mosquitto ${mosquittoVersion()}`,
    `- Load average (1, 5, 15 min) at ${new Date().toISOString().slice(11, 19)}Z, the machine being shared: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`,
  ].join('\n');
}
