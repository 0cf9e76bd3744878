/**
 * `npm run bench [-- --only mqtt|connections|emergency|breach|edge|ingest|history|ingest-batch|drills|registry] [-- --quick]`
 * (ingest: `--readings N`, `--pairs N`, `--skip-pg`, `--paths ours,sqlite` to run some paths only, logged and not written; bench/ingest-bench.ts)
 * Our MQTT gateway (auth + ACLs) side by side with Mosquitto (auth + ACLs) on this machine:
 * throughput and latency, then memory per idle connection; then the emergency switch beside a
 * bare command round trip (emergency-bench.ts). A full run rewrites bench/RESULTS.md;
 * `--only emergency` (without --quick) rewrites only its section there.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MOSQUITTO_TUNING, startBareAedes, startMosquitto, startOurs, type Broker } from './brokers.ts';
import { runConnections, runtimeRss, writeConnSection } from './conn-bench.ts';
import { emergencyCredentials, emergencySizes, runEmergency, type EmergencyResult } from './emergency-bench.ts';
import { breachBench, writeBreachSection } from './breach-bench.ts';
import { edgeBench, writeEdgeSection } from './edge-bench.ts';
import { reconnectBench, reconnectSection, writeReconnectSection } from './reconnect-bench.ts';
import { ingestBench } from './ingest-bench.ts';
import type { PathName } from './ingest-paths.ts';
import { historyBench, writeHistorySection } from './history-bench.ts';
import { ingestBatchBench, writeIngestBatchSection } from './ingest-batch-bench.ts';
import { ingestSection, writeIngestSection } from './ingest-report.ts';
import { drillsBench, drillsSection, writeDrillsSection } from './drills.ts';
import { registryBench, writeRegistrySection } from './registry-bench.ts';
import { GATEWAY_COUNT } from './identities.ts';
import { mqttCases, runMqttCase } from './mqtt-bench.ts';
import { EMERGENCY_HEADING, connSection, emergencySection, machine, mqttSection } from './report.ts';

const { values: args } = parseArgs({ options: {
  only: { type: 'string' }, quick: { type: 'boolean', default: false },
  readings: { type: 'string' }, pairs: { type: 'string' }, 'skip-pg': { type: 'boolean', default: false },
  paths: { type: 'string' },
} });
if (args.only !== undefined && !['mqtt', 'connections', 'reconnect', 'emergency', 'breach', 'edge', 'ingest', 'history', 'ingest-batch', 'drills', 'registry'].includes(args.only)) {
  console.error('usage: npm run bench -- [--only mqtt|connections|reconnect|emergency|breach|edge|ingest|history|ingest-batch|drills|registry] [--quick] [--readings N --pairs N --skip-pg]');
  process.exit(2);
}
const quick = args.quick;
const CONNECTIONS = quick ? 1_000 : 10_000;
const CONN_PROCESSES = quick ? 2 : 5;

const log = (s: string): void => console.log(s);

async function withBroker<T>(start: () => Promise<Broker>, fn: (b: Broker) => Promise<T>): Promise<T> {
  const broker = await start();
  try {
    return await fn(broker);
  } finally {
    await broker.stop();
  }
}

async function mqttBench(): Promise<string[]> {
  const sections: string[] = [];
  await withBroker(startOurs, (ours) => withBroker(startMosquitto, async (mosq) => {
    // Warm-up, not reported: JIT, and every identity authenticated once on both brokers.
    const warmup = mqttCases(true).find((c) => c.publishers > 1 && c.qos === 1 && !c.rate)!;
    await runMqttCase(ours, warmup);
    await runMqttCase(mosq, warmup);
    for (const c of mqttCases(quick)) {
      log(`-- ${c.name}`);
      const a = await runMqttCase(ours, c);
      const b = await runMqttCase(mosq, c);
      const section = mqttSection(c, a, b);
      log(section);
      sections.push(section);
    }
  }));
  return sections;
}

async function connectionBench(): Promise<string> {
  log(`-- ${CONNECTIONS} idle connections`);
  // One broker at a time, each fresh, so that the other's clients cost it nothing.
  const a = await withBroker(startOurs, (b) => runConnections(b, CONNECTIONS, CONN_PROCESSES));
  const b = await withBroker(startMosquitto, (b) => runConnections(b, CONNECTIONS, CONN_PROCESSES));
  const bare = await withBroker(startBareAedes, (b) => runConnections(b, CONNECTIONS, CONN_PROCESSES));
  const section = connSection(a, b, await runtimeRss(), bare);
  log(section);
  return section;
}

async function emergencyBench(): Promise<string> {
  const sizes = emergencySizes(quick);
  const file = await emergencyCredentials(Math.max(...sizes.map((s) => s.gateways)));
  const results: EmergencyResult[] = [];
  for (const size of sizes) {
    log(`-- emergency switch, ${size.gateways.toLocaleString('en-US')} gateways`);
    results.push(await runEmergency(size, file));
  }
  const section = emergencySection(results);
  log(section);
  return section;
}

/** Replaces the emergency section of RESULTS.md (from its heading to the next `## ` or the end), or appends it. */
function writeEmergencySection(section: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const text = existsSync(url) ? readFileSync(url, 'utf8') : '';
  const start = text.indexOf(EMERGENCY_HEADING);
  let out: string;
  if (start < 0) {
    out = `${text.trimEnd()}\n\n${section}`;
  } else {
    const next = text.indexOf('\n## ', start + EMERGENCY_HEADING.length);
    out = text.slice(0, start) + section + (next < 0 ? '' : `\n${text.slice(next + 1)}`);
  }
  writeFileSync(url, out);
}

const only = (name: string): boolean => args.only === undefined || args.only === name;
const started = Date.now();
log(machine() + '\n');
const mqtt = only('mqtt') ? await mqttBench() : [];
const conns = only('connections') ? [await connectionBench()] : [];
const reconnect = only('reconnect') ? [reconnectSection(await reconnectBench(quick, log))] : []; // reconnect-bench.ts: a storm of first logins
reconnect.forEach((r) => log(r));
const emergency = only('emergency') ? [await emergencyBench()] : [];
const breach = only('breach') ? [await breachBench(quick, log)] : []; // breach-bench.ts: breach to case on the live stream
const edge = only('edge') ? [await edgeBench(quick, log)] : []; // edge-bench.ts: RTU pass vs wire time, points per core, footprint
const ingestOpts = {
  gateways: 100, devices: 10, window: 10, pg: !args['skip-pg'],
  readings: Number(args.readings ?? (quick ? 10_000 : 100_000)), pairs: Number(args.pairs ?? (quick ? 1 : 3)),
  ...(args.paths ? { paths: args.paths.split(',') as PathName[] } : {}),
};
const ingest = only('ingest') ? [ingestSection(ingestOpts, await ingestBench(ingestOpts, log), machine())] : []; // ingest-bench.ts: end to end beside Mosquitto peers and Node-RED
const history = only('history') ? [await historyBench(quick, log)] : []; // history-bench.ts: a month of 1 s readings in 500 buckets
const ingestBatch = only('ingest-batch') ? [await ingestBatchBench(quick, log)] : []; // ingest-batch-bench.ts: one transaction per reading vs group commit
const drills = only('drills') ? [drillsSection(await drillsBench(log))] : []; // drills.ts: four faults under load through a cluster
const registry = only('registry') ? [await registryBench(quick, log, args['skip-pg'])] : []; // registry-bench.ts: 100,000 devices imported, the paged list
log(`bench took ${((Date.now() - started) / 1000).toFixed(0)} s`);

if (!quick && args.only === 'registry') {
  log(registry[0]!);
  writeRegistrySection(registry[0]!);
  log('wrote the registry section of bench/RESULTS.md');
} else if (!quick && args.only === 'history') {
  log(history[0]!);
  writeHistorySection(history[0]!);
  log('wrote the history section of bench/RESULTS.md');
} else if (!quick && args.only === 'ingest' && !args.paths) { // --paths: a partial run, logged only
  log(ingest[0]!);
  writeIngestSection(ingest[0]!);
  log('wrote the ingest section of bench/RESULTS.md');
} else if (!quick && args.only === 'connections') {
  writeConnSection(conns[0]!);
  log('wrote the idle connections section of bench/RESULTS.md');
} else if (!quick && args.only === 'reconnect') {
  writeReconnectSection(reconnect[0]!);
  log('wrote the reconnect section of bench/RESULTS.md');
} else if (!quick && args.only === 'drills') {
  log(drills[0]!);
  writeDrillsSection(drills[0]!);
  log('wrote the fault drills section of bench/RESULTS.md');
} else if (!quick && args.only === 'ingest-batch') {
  log(ingestBatch[0]!);
  writeIngestBatchSection(ingestBatch[0]!);
  log('wrote the ingest-batch section of bench/RESULTS.md');
} else if (!quick && args.only === 'edge') {
  writeEdgeSection(edge[0]!);
  log('wrote the edge section of bench/RESULTS.md');
} else if (!quick && args.only === 'breach') {
  writeBreachSection(breach[0]!);
  log('wrote the breach-to-case section of bench/RESULTS.md');
} else if (!quick && args.only === 'emergency') {
  writeEmergencySection(emergency[0]!);
  log('wrote the emergency section of bench/RESULTS.md');
} else if (quick || args.only) {
  log('(partial run: bench/RESULTS.md not rewritten)');
} else {
  writeFileSync(new URL('RESULTS.md', import.meta.url), [
    '# CitySteward MQTT benchmark: our gateway vs Mosquitto', '',
    'Generated by `npm run bench` (bench/run.ts); rewrite it by running the bench again.', '',
    '## Machine', '', machine(), '',
    '## Method', '',
    '- Both brokers run in a process of their own on 127.0.0.1, with password authentication and topic ACLs on:',
    `  our gateway (gateway/gateway.ts, Aedes) in a child Node process; a private Mosquitto on a free port with`,
    `  a password file, an ACL file equivalent to gateway/acl.ts and \`${MOSQUITTO_TUNING.join('`, `')}\`.`,
    `- Identities: ${GATEWAY_COUNT} gateways \`gw-N\` (each may publish only on \`cs/v1/gw-N/up/+\`) and one service identity`,
    '  subscribing to `cs/v1/+/up/+` (fan-in) or to `cs/v1/gw-0/up/dev` (1 -> 1).',
    '- Clients: mqtt.js, MQTT 3.1.1, in child processes (1 subscriber process, 1 or 2 publisher processes).',
    '  Each payload is a ~150-byte reading JSON carrying its send time; latency = arrival - send time',
    '  (same clock). Throughput = messages delivered to the subscriber / (last arrival - first send).',
    '  Publishers send as fast as they may, with at most N messages unacknowledged (QoS 1: awaiting PUBACK;',
    '  QoS 0: awaiting the socket write), so latency at full speed is mostly queueing (QoS 0 has no end-to-end',
    '  flow control); the paced cases (100 msg/s per gateway) give latency below saturation. A short warm-up',
    '  runs first on each broker. The cases alternate between the two brokers; the machine is shared, so expect',
    '  some noise between runs.',
    '- Connections: each broker fresh, RSS (/proc/PID/status VmRSS) read when idle, again after every identity',
    `  connected once and left (auth warm-up: our store runs scrypt once per username), then ${CONNECTIONS.toLocaleString('en-US')} clients`,
    `  connect from ${CONN_PROCESSES} processes (client i authenticates as \`gw-(i mod ${GATEWAY_COUNT})\` with its own client id,`,
    '  keepalive 60 s) and RSS is read again 2 s after the last CONNACK. Our broker gets a full GC before each reading.',
    '  Per connection = RSS growth / connections, from the warm reading (and from the start, for reference).', '',
    '## Results', '',
    ...mqtt, ...conns,
    'The emergency switch has a section of its own at the end.', '',
    '## Reproduce', '',
    '```sh',
    'npm run bench                          # everything, ~5 min; rewrites bench/RESULTS.md',
    'npm run bench -- --only mqtt           # or --only connections, --only emergency',
    'npm run bench -- --quick               # smoke run with small counts',
    '```', '',
    'Needs `mosquitto` and `mosquitto_passwd` on PATH (Debian package mosquitto); the bench starts its own',
    'Mosquitto and never uses the one on port 1883.', '',
    ...reconnect,
    ...emergency,
    ...breach,
    ...edge,
    ...ingest,
    ...history,
    ...ingestBatch,
    ...drills,
    ...registry,
  ].join('\n'));
  log('wrote bench/RESULTS.md');
}
