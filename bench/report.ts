/** Markdown tables: ours next to Mosquitto, with the ratio ours / Mosquitto. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import type { ConnResult } from './conn-bench.ts';
import { BENCH_SCRYPT, CLIENTS_PER_PROCESS, type EmergencyResult } from './emergency-bench.ts';
import type { MqttCase, MqttResult } from './mqtt-bench.ts';
import { mosquittoVersion } from './brokers.ts';
import { percentile } from './stats.ts';

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

export function connSection(ours: ConnResult, mosq: ConnResult, runtimeKiB?: { node: number; tsx: number; command: number }, bare?: ConnResult): string {
  const mib = (kib: number): number => kib / 1024;
  const runtime = runtimeKiB ? [
    `Of ours at start, an idle Node process holds ${mib(runtimeKiB.node).toFixed(1)} MiB, and one with the tsx loader (a hooks thread with a V8`,
    `isolate of its own: how \`citysteward\` runs the sources when its build is missing or stale, and how tests run) ${mib(runtimeKiB.tsx).toFixed(1)} MiB, before any module of ours.`,
    `The \`citysteward gateway\` command itself, as built by \`npm install\` (its CLI, a fresh data directory, no HTTP port, no Redis), holds ${mib(runtimeKiB.command).toFixed(1)} MiB 5 s after its start.`, '',
  ] : [];
  const perConnKiB = ours.perConnection / 1024;
  const startMiB = mib(ours.rssStartKiB);
  const verdict = (ok: boolean): string => (ok ? 'met' : 'not met');
  const floor = bare ? [
    `The floor: Aedes alone in plain JavaScript (bench/bare-aedes-worker.js: Aedes on a \`net\` server as its README starts it, a password check and`,
    'nothing else of ours, the same V8 flags) holds ' + `${mib(bare.rssStartKiB).toFixed(1)} MiB at start and ${(bare.perConnection / 1024).toFixed(2)} KiB per idle connection`
      + `${bare.heapPerConnection !== undefined ? ` (JS heap ${(bare.heapPerConnection / 1024).toFixed(2)} KiB)` : ''}: what any broker built on Aedes and Node costs before a line of its own.`, '',
  ] : [];
  const targets = [
    `Targets (issue 12): at most 60 MiB at start, ${verdict(startMiB <= 60)} (${startMiB.toFixed(1)}); at most 4 KiB per connection from warm, ${verdict(perConnKiB <= 4)} (${perConnKiB.toFixed(2)}).`,
    'Where the memory goes and what was cut: docs/architecture.md#broker-memory.', '',
  ];
  const rows: Row[] = [
    ['broker RSS at start (MiB)', mib(ours.rssStartKiB), mib(mosq.rssStartKiB), 1],
    ['broker RSS after auth warm-up (MiB)', mib(ours.rssBeforeKiB), mib(mosq.rssBeforeKiB), 1],
    [`broker RSS with ${ours.target.toLocaleString('en-US')} connected (MiB)`, mib(ours.rssAfterKiB), mib(mosq.rssAfterKiB), 1],
    ['memory per connection, from warm (KiB)', ours.perConnection / 1024, mosq.perConnection / 1024, 2],
    ['memory per connection, from start (KiB)', (ours.rssAfterKiB - ours.rssStartKiB) / ours.connected, (mosq.rssAfterKiB - mosq.rssStartKiB) / mosq.connected, 2],
    ['time to connect all (s)', ours.connectSeconds, mosq.connectSeconds, 1],
  ];
  const b = bare ? [mib(bare.rssStartKiB), mib(bare.rssBeforeKiB), mib(bare.rssAfterKiB), bare.perConnection / 1024, (bare.rssAfterKiB - bare.rssStartKiB) / bare.connected, bare.connectSeconds] : [];
  const lines = bare
    ? ['| | ours | bare Aedes | Mosquitto | ours / Mosquitto | ours / bare Aedes |', '|---|---:|---:|---:|---:|---:|',
      ...rows.map(([label, a, m, d], i) => `| ${label} | ${fmt(a, d)} | ${fmt(b[i]!, d)} | ${fmt(m, d)} | ${fmt(a / m, 2)} | ${fmt(a / b[i]!, 2)} |`),
      `| of which JS heap, after a full GC (KiB) | ${ours.heapPerConnection !== undefined ? (ours.heapPerConnection / 1024).toFixed(2) : ''} | ${bare.heapPerConnection !== undefined ? (bare.heapPerConnection / 1024).toFixed(2) : ''} | | | |`,
      `| connected | ${ours.connected} / ${ours.target} | ${bare.connected} / ${bare.target} | ${mosq.connected} / ${mosq.target} | | |`]
    : [table(rows, [
      ...(ours.heapPerConnection !== undefined ? [['of which JS heap, after a full GC (KiB)', (ours.heapPerConnection / 1024).toFixed(2), '', '']] : []),
      ['connected', `${ours.connected} / ${ours.target}`, `${mosq.connected} / ${mosq.target}`, ''],
    ])];
  return [
    `### ${ours.target.toLocaleString('en-US')} idle authenticated connections`, '',
    ...lines,
    '', ...runtime, ...floor, ...targets,
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

/** The heading of the emergency section; `--only emergency` replaces the section it starts. */
export const EMERGENCY_HEADING = '## Emergency switch: warning to every gateway\'s acknowledgement';

/** A self-contained RESULTS.md section (machine, method, results, reproduce) for the emergency bench. */
export function emergencySection(results: EmergencyResult[]): string {
  const p50 = (xs: number[]): number => percentile(Float64Array.from(xs).sort(), 50);
  const ms = (n: number): string => fmt(n, 0);
  const cols = results.map((r) => `${r.gateways.toLocaleString('en-US')} gateways`);
  const lines = [`| | ${cols.join(' | ')} |`, `|---|${results.map(() => '---:').join('|')}|`];
  const row = (label: string, f: (r: EmergencyResult) => string): void => { lines.push(`| ${label} | ${results.map(f).join(' | ')} |`); };
  const bare = (r: EmergencyResult): number => p50(r.bare.map((b) => b.lastAckMs));
  const settled = (r: EmergencyResult): number => p50(r.ours.map((o) => o.settledMs));
  row('**bare**: first command to last acknowledgement, p50 (ms)', (r) => ms(bare(r)));
  row('bare: every command PUBACKed, p50 (ms)', (r) => ms(p50(r.bare.map((b) => b.pubackedMs))));
  row('ours: warning to mode state committed and audited (before the fan-out), p50 (ms)', (r) => fmt(p50(r.ours.map((o) => o.committedMs)), 1));
  row('**ours**: warning to mode switched (`receiveWarning` resolved), p50 (ms)', (r) => ms(p50(r.ours.map((o) => o.switchedMs))));
  row('ours: warning to last acknowledgement, p50 (ms)', (r) => ms(p50(r.ours.map((o) => o.lastAckMs))));
  row('**ours**: warning to `fanout.settled()`, p50 (ms)', (r) => ms(settled(r)));
  row('**ours / bare** (settled p50 / bare p50)', (r) => fmt(settled(r) / bare(r), 2));
  row('our own work: settled p50 - bare p50 (ms)', (r) => ms(settled(r) - bare(r)));
  row('fan-out bookkeeping alone: begin + N onAck, no MQTT (ms)', (r) => ms(r.fanoutAloneMs));
  row('rounds of each kind', (r) => String(r.reps));
  row('bare, every round (ms)', (r) => r.bare.map((b) => ms(b.lastAckMs)).join(', '));
  row('ours settled, every round (ms)', (r) => r.ours.map((o) => ms(o.settledMs)).join(', '));
  row('commands sent by the fan-out per gateway and round', (r) => fmt(r.ours.reduce((n, o) => n + o.attempts, 0) / (r.ours.length * r.gateways), 2));
  row('simulated-gateway processes', (r) => String(r.processes));
  row('setup: all gateways connected and subscribed (s)', (r) => fmt(r.connectSeconds, 1));
  row('setup: then every retained birth published (s)', (r) => fmt(r.birthSeconds, 1));
  row('broker RSS at the end (MiB)', (r) => fmt(r.brokerRssMiB, 0));
  const notes: string[] = [];
  const target = results.find((r) => r.gateways === 10_000);
  if (target) {
    const took = settled(target);
    notes.push(`- Target (docs/targets.md#targets), 10,000 gateways within about 2 s: ${took <= 2_000 ? 'met' : 'not met'}, ${ms(took)} ms (p50),`
      + ` against a bare round trip of ${ms(bare(target))} ms on the same clients and broker in the same run.`);
  }
  notes.push(
    '- Reading: "our own work" is what the emergency service adds to the bare round trip (same clients, broker and service client).',
    '  "Fan-out bookkeeping alone" is the CPU time of cloud/emergency/fanout.ts with no MQTT at all: where it is close to "our own',
    '  work", that module\'s bookkeeping, not the broker nor the audited switch ("committed"), is what to make cheaper. The sends',
    '  are not awaited, so \"mode switched\" is the audited switch plus queuing the commands; acks are counted as they arrive.',
  );
  return [
    EMERGENCY_HEADING, '',
    'Generated by `npm run bench` (bench/emergency-bench.ts); `npm run bench -- --only emergency` rewrites this section alone.',
    'Target (docs/targets.md#targets): the switch for 10,000 gateways within about 2 s, beside a bare round trip of about 1.2 s.', '',
    '### Machine', '', machine(), '',
    '### Method', '',
    '- Broker: our gateway (gateway/gateway.ts: Aedes, password authentication and topic ACLs on) in a child Node process of its own, fresh for each size.',
    `- Gateways: N light simulated gateways (bench/emergency-worker.ts), mqtt.js clients with MQTT 3.1.1, at most ${CLIENTS_PER_PROCESS.toLocaleString('en-US')} per child process;`,
    '  each is its own gateway identity `gw-i`, subscribes (QoS 1) to its own `cs/v1/gw-i/cmd`, publishes a retained birth on',
    '  `cs/v1/gw-i/state` and acknowledges every command at once with `{ id, outcome: \'ok\', ts }` on `cs/v1/gw-i/cmd/ack` (QoS 1).',
    '  Births follow once every gateway has subscribed: Aedes\' memory persistence scans every retained message for each new',
    '  subscription, so births interleaved with 10,000 subscriptions cost O(n²) (about 50 s of setup here at 10,000 against 11 to 18 s).',
    '- Cloud side, in the bench process (bench/emergency-cloud.ts): one mqtt.js client of the service identity, subscribed to',
    '  `cs/v1/+/cmd/ack` and `cs/v1/+/state`; every message goes through one handler (topic parse, JSON parse, per-command tally of acks).',
    '  - **bare**: the client publishes one command per gateway (the fan-out\'s shape and size, QoS 1) and waits for every ack; no emergency logic.',
    '  - **ours**: `buildEmergency` (cloud/emergency/service.ts) on SQLite in a temp dir, publishing through the same client, fed every ack and',
    '    birth (`fanout.onAck`, `fanout.onOnline`); timed from `receiveWarning(orange typhoon CAP, test/fixtures/cap/orange-typhoon.xml',
    '    with a fresh identifier)` to `fanout.settled()`; also to `receiveWarning` resolved (mode switched and audited, every command',
    '    sent and PUBACKed, since the service awaits the fan-out\'s sends), to the mode state committed (the mode store\'s',
    '    `changed` event: CAP parsed, policy decided, alert and audit rows written) and to the last ack arriving.',
    '  - Warm-up, not reported: one bare round per size, one round of ours before the first size; then rounds alternate',
    '    bare and ours; after each of ours the mode returns to',
    '    normal (switchMode, every gateway acknowledges; not timed). p50 = median of the rounds (nearest rank).',
    '  - The fan-out\'s bookkeeping alone (cloud/emergency/fanout.ts with a no-op publish: `begin`, then one `onAck` per gateway),',
    '    timed once per size after the rounds, shows how much of our own work is that module\'s CPU time.',
    `- Credentials: the bench identities are hashed with scrypt N = ${BENCH_SCRYPT.N} (r ${BENCH_SCRYPT.r}, p ${BENCH_SCRYPT.p}) instead of the store's`,
    '  N = 16,384, so that 10,000 distinct identities authenticate once in seconds instead of about 6 minutes; authentication',
    '  happens while connecting, before and never during the measurement. Written straight in the credentials file format',
    '  (the store checks the stored parameters of each entry), then opened with `CredentialStore` to check it is accepted.',
    '- The machine has 2 cores shared by the broker, the client processes and the cloud side (and other work on this machine:',
    '  see the load average), so the figures include that contention.', '',
    '### Results', '',
    ...lines, '',
    ...notes, '',
    '### Reproduce', '',
    '```sh',
    'npm run bench -- --only emergency      # 1,000 and 10,000 gateways; rewrites this section of bench/RESULTS.md',
    'npm run bench -- --only emergency --quick   # 200 gateways, 2 rounds, nothing written',
    '```', '',
  ].join('\n');
}
