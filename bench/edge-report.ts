/** The edge section of bench/RESULTS.md: RTU pass against the wire-time limit, points per core beside Neuron, footprint. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { BREAKER, DEAD_UNIT, REPLY_MS, RTU_SLAVES, TIMEOUT_MS, charMs, gapMs, readBytes, type RtuRun } from './edge-rtu.ts';
import type { FlatRun, FootprintRun, MbpollTcp } from './edge-tcp.ts';
import { percentile } from './stats.ts';

export const EDGE_HEADING = '## Edge: Modbus poll pass, points per core, footprint';

/** EMQX Neuron 3.2.1, Modbus TCP performance page, scenario 3 (docs.emqx.com/en/emqx-neuron/latest/performance/modbustcp.html). */
export const NEURON = { pointsPerS: 100_000, cores: 4, cpuShare: 0.30, memMB: 497, mem1kMB: 128, mem10kMB: 199 };
/** 30 % of the whole 4-core machine is 1.2 cores busy: 100,000 / 1.2 points per core-second. */
export const NEURON_PER_CORE = NEURON.pointsPerS / (NEURON.cpuShare * NEURON.cores);
/** If the 30 % were of one core (top's per-process scale): 0.3 cores busy. */
export const NEURON_PER_CORE_IF_ONE_CORE = NEURON.pointsPerS / NEURON.cpuShare;

export interface EdgeResults {
  rtu: RtuRun[];
  flat: FlatRun[];
  mbpollTcp?: MbpollTcp;
  footprint: FootprintRun[];
  load: { before: number[]; after: number[]; psiBefore?: number; psiAfter?: number };
  seconds: number;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
const median = (xs: number[]): number => percentile(Float64Array.from(xs).sort(), 50);
const list = (xs: number[]): string => xs.map((x) => fmt(x)).join(', ');

/** Least-squares slope and intercept of y over x. */
export function fit(xs: number[], ys: number[]): { slope: number; intercept: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const slope = sxx === 0 ? NaN : xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / sxx;
  return { slope, intercept: my - slope * mx };
}

/** Passes of the dead-slave run after its breaker opened (the first `failures` passes each wait a timeout). */
function steady(r: RtuRun): { quiet: number[]; probed: number[] } {
  const quiet: number[] = [];
  const probed: number[] = [];
  r.dead.ms.forEach((ms, i) => { if (i >= BREAKER.failures) (r.dead.probes[i]! > 0 ? probed : quiet).push(ms); });
  return { quiet, probed };
}

function rtuTable(runs: RtuRun[]): string[] {
  const lines = [`| | ${runs.map((r) => `${fmt(r.baud)} baud`).join(' | ')} |`, `|---|${runs.map(() => '---:').join('|')}|`];
  const row = (label: string, f: (r: RtuRun) => string): void => { lines.push(`| ${label} | ${runs.map(f).join(' | ')} |`); };
  const ours = (r: RtuRun): number => median(r.healthy.ms);
  const mb = (r: RtuRun): number => median(r.mbpoll.healthy);
  row('one read: wire-time limit (ms)', (r) => fmt(r.limit32Ms / RTU_SLAVES, 1));
  row(`**wire-time limit of a pass, ${RTU_SLAVES} slaves** (ms)`, (r) => fmt(r.limit32Ms));
  row('**ours**: pass, p50 (ms)', (r) => fmt(ours(r)));
  row('ours: every pass (ms)', (r) => list(r.healthy.ms));
  row('**ours / limit**', (r) => fmt(ours(r) / r.limit32Ms, 2));
  row('mbpoll: pass, p50 (ms)', (r) => fmt(mb(r)));
  row('mbpoll / limit', (r) => fmt(mb(r) / r.limit32Ms, 2));
  row('**ours / mbpoll**', (r) => fmt(ours(r) / mb(r), 2));
  row(`dead slave: passes until its breaker opened (${BREAKER.failures} faults; ms)`, (r) => list(r.dead.ms.slice(0, BREAKER.failures)));
  row(`dead slave, breaker open: wire-time limit of the ${RTU_SLAVES - 1} live slaves (ms)`, (r) => fmt(r.limit31Ms));
  row('**dead slave, breaker open: pass, p50 (ms)**', (r) => fmt(median(steady(r).quiet)));
  row(`**dead slave, breaker open: pass / limit of ${RTU_SLAVES - 1}**`, (r) => fmt(median(steady(r).quiet) / r.limit31Ms, 2));
  row('cost of the open dead slave: that p50 - healthy p50 × 31/32 (ms)', (r) => fmt(median(steady(r).quiet) - (ours(r) * (RTU_SLAVES - 1)) / RTU_SLAVES));
  row('dead slave: probe passes (one timeout each; ms)', (r) => list(steady(r).probed) || 'none');
  row('readings per pass with the dead slave', (r) => [...new Set(r.dead.readings)].join(', '));
  row('mbpoll with the dead slave (no breaker): every pass (ms)', (r) => list(r.mbpoll.dead));
  const within = (r: RtuRun): boolean => ours(r) <= 1.1 * r.limit32Ms;
  const cost = (r: RtuRun): number => median(steady(r).quiet) - (ours(r) * (RTU_SLAVES - 1)) / RTU_SLAVES;
  const spread = (r: RtuRun): number => Math.max(...r.healthy.ms) - Math.min(...r.healthy.ms);
  const at = (f: (r: RtuRun) => string): string => runs.map((r) => `${f(r)} at ${fmt(r.baud)}`).join(', ');
  lines.push('',
    `- Target, a pass within 10 % of the wire-time limit: ${at((r) => `${within(r) ? 'met' : 'not met'} (${fmt(ours(r) / r.limit32Ms, 2)})`)}.`,
    `  mbpoll, a C master on the same line and slaves in the same run: ${at((r) => fmt(mb(r) / r.limit32Ms, 2))} of the limit; what both`,
    '  lose beyond it is mostly the simulation\'s (timers, a pty, the scheduler of a shared machine), so ours / mbpoll is the figure to watch.',
    `- Target, a dead slave costs the others nothing once its breaker is open: ${at((r) => (Math.abs(cost(r)) <= spread(r) ? 'met' : 'not met')
      + ` (${fmt(cost(r))} ms, healthy passes spread over ${fmt(spread(r))} ms)`)}. Before it opens each pass waits one timeout; after,`,
    '  one probe pass per backoff (2 s, 4 s, 8 s ... 60 s) waits one. mbpoll, with no breaker, waits it in every pass.');
  return lines;
}

function tcpLines(flat: FlatRun[], mb?: MbpollTcp): string[] {
  const lines = [
    '| shape | buses × devices | points per read | points read | wall (s) | edge CPU (s) | points/s, wall | **points per CPU-second** | CPU per request (µs) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const f of flat) {
    lines.push(`| ${f.shape} | ${f.buses} × ${f.devices / f.buses} | ${fmt(f.pointsPerRead, 1)} | ${fmt(f.points)} | ${fmt(f.wallMs / 1000, 1)} | ${fmt(f.cpuMs / 1000, 2)}`
      + ` | ${fmt(f.points / (f.wallMs / 1000))} | **${fmt(f.points / (f.cpuMs / 1000))}** | ${fmt((f.cpuMs * 1000) / f.requests)} |`);
  }
  const neuron = flat.find((f) => f.shape.startsWith('Neuron'));
  const notes: string[] = [''];
  if (neuron) {
    const perCore = neuron.points / (neuron.cpuMs / 1000);
    notes.push(
      `- **Beside EMQX Neuron** (scenario 3 of its Modbus TCP performance page: ${fmt(NEURON.pointsPerS)} float points/s, 10 drivers × 10 groups × 1,000`,
      `  contiguous points read once a second, Neuron 3.2.1 on a ${NEURON.cores}-core Xeon Platinum 8269CY, "CPU usage 30 %", ${NEURON.memMB} MB).`,
      `  Per core: 30 % of the ${NEURON.cores}-core machine is ${fmt(NEURON.cpuShare * NEURON.cores, 1)} cores busy, so ${fmt(NEURON.pointsPerS)} / ${fmt(NEURON.cpuShare * NEURON.cores, 1)}`,
      `  = **${fmt(NEURON_PER_CORE)} points per core-second** (not 833k: that is a factor of ten off). Ours, the same shape: **${fmt(perCore)}**, ratio`,
      `  **${fmt(perCore / NEURON_PER_CORE, 2)}**. Should their 30 % be of one core (top's per-process scale), theirs is ${fmt(NEURON_PER_CORE_IF_ONE_CORE)}`,
      `  per core-second and the ratio ${fmt(perCore / NEURON_PER_CORE_IF_ONE_CORE, 2)}. Their figure is at 1 poll/s per group, averaged; ours is flat out.`,
      '  Different CPUs (theirs a 3.1 GHz Xeon, ours below); no correction is made for that.',
    );
    if (mb && mb.requests > 0) {
      const ourUs = (neuron.cpuMs * 1000) / neuron.requests;
      const theirUs = (mb.cpuS * 1e6) / mb.requests;
      notes.push(
        `- **Beside mbpoll** (Debian, libmodbus, C), the same read (${mb.floats} float32 = ${mb.floats * 2} registers, one request) of the same simulator:`,
        `  ${fmt(mb.requests)} requests by ${mb.procs} mbpoll processes, each over ${mb.slaves} devices at its shortest poll rate (10 ms), in ${fmt(mb.wallS, 1)} s; ${fmt(mb.cpuS, 2)} s of CPU`,
        `  (/proc, 10 ms ticks): **${fmt(theirUs)} µs per request**, printing every value to a pipe. Ours: ${fmt(ourUs)} µs per request,`,
        `  decoding every point into a reading. **Ours / mbpoll: ${fmt(ourUs / theirUs, 2)}**.`,
      );
    }
  }
  return [...lines, ...notes];
}

function footprintLines(all: FootprintRun[], load: EdgeResults['load'], city?: FlatRun): string[] {
  const runs = all.filter((r) => !r.outbox); // the edge's defaults; variants are listed, not fitted
  const lines = [
    '| devices | buses | points | readings/s asked | readings/s done | edge RSS (MiB) | JS heap (MiB) | edge CPU (% of one core) | CPU per reading (ms) | simulators + broker CPU (% of one core) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const rate = (r: FootprintRun): number => r.readings / (r.wallMs / 1000);
  for (const r of all) {
    const variant = r.outbox ? ` (outbox ${Object.entries(r.outbox).map(([k, v]) => `${k} ${String(v)}`).join(', ')})` : '';
    lines.push(`| ${fmt(r.devices)}${variant} | ${r.buses} | ${fmt(r.points)} | ${fmt(r.devices)} | ${fmt(rate(r))} | ${fmt(r.procRssKiB / 1024, 1)} | ${fmt(r.heapKiB / 1024, 1)}`
      + ` | ${fmt((100 * r.cpuMs) / r.wallMs, 1)} | ${fmt(r.cpuMs / Math.max(1, r.readings), 2)} | ${fmt((100 * r.hostCpuMs) / r.wallMs, 1)} |`);
  }
  if (runs.length < 2) return lines;
  const mem = fit(runs.map((r) => r.devices), runs.map((r) => r.procRssKiB));
  // CPU against the readings actually made: a starved edge (shared cores) polls less often than asked.
  const cpu = fit(runs.map(rate), runs.map((r) => (1000 * r.cpuMs) / r.wallMs));
  const ptsPerDev = runs.reduce((s, r) => s + r.points, 0) / runs.reduce((s, r) => s + r.devices, 0);
  const short = runs.filter((r) => rate(r) < 0.9 * r.devices);
  return [...lines, '',
    `- **Per polled device** (least squares over the sizes above): **${fmt(mem.slope, 1)} KiB of RSS** (RSS against devices; intercept`,
    `  ${fmt(mem.intercept / 1024, 0)} MiB: Node, the edge's modules, SQLite, MQTT), and **${fmt(cpu.slope, 2)} ms of CPU per reading**, so **${fmt(cpu.slope / 10, 3)} % of one core**`,
    `  per device polled once a second (CPU ms per second against readings per second done; intercept ${fmt(cpu.intercept, 0)} ms a second).`,
    `  Per point (${fmt(ptsPerDev, 1)} points a device): ${fmt(mem.slope / ptsPerDev, 1)} KiB.`,
    ...(short.length ? [`- At ${short.map((r) => fmt(r.devices)).join(' and ')} devices the edge made fewer readings than asked while neither it nor the process`,
      '  serving it (simulators, broker) used much of a core: the edge waited, on its outbox\'s fsyncs (next point) and for a core on the shared',
      `  machine (load average and CPU pressure${load.psiAfter !== undefined ? ` ${fmt(load.psiAfter, 0)} %` : ''} above). So CPU is fitted per reading done, not per device configured.`] : []),
    ...outboxNote(runs, all.filter((r) => r.outbox)),
    ...(city ? [`- The pollers alone cost ${fmt(city.cpuMs / city.readings, 2)} ms of CPU per reading of these devices (the city's row above, flat out);`,
      '  the rest of "CPU per reading" is the outbox (a SQLite commit, synchronous FULL), the MQTT publish and its PUBACK, and timers.'] : []),
    `- Context, not a like-for-like peer: Neuron's page gives ${NEURON.mem1kMB} MB with 1,000 points, ${NEURON.mem10kMB} MB with 10,000 and ${NEURON.memMB} MB with 100,000`,
    `  (about ${fmt(((NEURON.memMB - NEURON.mem10kMB) * 1000) / 90_000, 1)} KB per point between the last two).`,
  ];
}

/** A default run beside the same size with another outbox setting: what the synchronous commit costs. */
function outboxNote(runs: FootprintRun[], variants: FootprintRun[]): string[] {
  const rate = (r: FootprintRun): number => r.readings / (r.wallMs / 1000);
  return variants.flatMap((v) => {
    const base = runs.find((r) => r.devices === v.devices);
    if (!base) return [];
    const faster = rate(v) > 1.2 * rate(base);
    return [`- **${faster ? 'The outbox sets the pace' : 'The outbox setting made no clear difference in this run'}**: at ${fmt(v.devices)} devices the edge made ${fmt(rate(base))} readings/s with its default`,
      `  outbox (SQLite, synchronous FULL) and ${fmt(rate(v))} with \`${Object.entries(v.outbox!).map(([k, x]) => `${k}: ${String(x)}`).join(', ')}\`, in the same run. better-sqlite3 commits on the`,
      '  event loop, and a commit with an fsync (one per loop turn: about one per reading when polls are spread over the second) holds up',
      '  polling meanwhile; on this shared machine\'s disk an fsync is slow.'];
  });
}

function machineLines(load: EdgeResults['load']): string[] {
  const pkg = (name: string): string => { try { return execFileSync('dpkg-query', ['-W', '-f', '${Version}', name], { encoding: 'utf8' }); } catch { return 'absent'; } };
  return [
    `- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    `- CPU: ${availableParallelism()} cores (nproc), ${cpus()[0]?.model ?? 'unknown'}; Linux ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}`,
    `- Node ${process.version}; mbpoll ${pkg('mbpoll')}; socat ${pkg('socat')}`,
    `- Load average (1, 5, 15 min), the machine being shared: before ${load.before.map((l) => l.toFixed(2)).join(', ')}; after ${load.after.map((l) => l.toFixed(2)).join(', ')}`,
    ...(load.psiBefore !== undefined ? [`- CPU pressure (/proc/pressure/cpu, "some" avg60: share of time some task waited for a core): before ${fmt(load.psiBefore, 0)} %, after ${fmt(load.psiAfter ?? NaN, 0)} %`] : []),
  ];
}

export function edgeSection(r: EdgeResults): string {
  const b0 = r.rtu[0];
  const ex = b0 ? readBytes({ table: 'holding', count: b0.registers }) : { request: 8, response: 29 };
  return [
    EDGE_HEADING, '',
    `Generated by \`npm run bench -- --only edge\` (bench/edge-bench.ts, ${fmt(r.seconds)} s); that command rewrites this section alone.`,
    'Targets (docs/targets.md): a poll pass within 10 % of the wire-time limit (docs/architecture.md: Modbus physical limits); a dead slave costs the others nothing;',
    'resident memory and CPU per polled device reported, EMQX Neuron\'s published figures the peer.', '',
    '### Machine', '', ...machineLines(r.load), '',
    '### Method', '',
    `- **RTU pass.** ${RTU_SLAVES} simulated slaves (devices/rtu-sim.ts, in the bench process), each a \`${b0?.profile ?? 'pipeline'}\` transmitter (${b0?.registers ?? 12} holding registers, one read),`,
    '  on one end of a `socat` pty pair; the edge\'s own bus poller and transport (edge/poller.ts, edge/transport.ts) on the other end, in a',
    '  child process (bench/edge-worker.ts). A pass = `pollAll()`: every slave read once, one request at a time. A pty has no baud, so the',
    '  simulator holds each reply for the request\'s and the reply\'s wire time plus the request\'s 3.5-character end-of-frame silence, then',
    `  the slave's reply time (${REPLY_MS} ms); the edge keeps the silence before its next request (rounded up to whole ms).`,
    `- **Wire-time limit** of one read = (request + response bytes) × 11 bits / baud + 2 × the 3.5-character gap (1.75 ms above 19,200 baud)`,
    `  + the reply time: here (${ex.request} + ${ex.response}) × ${r.rtu.map((x) => `${fmt(charMs(x.baud), 3)} ms`).join(' or ')} + 2 × ${r.rtu.map((x) => `${fmt(gapMs(x.baud), 2)} ms`).join(' or ')} + ${REPLY_MS} ms;`,
    '  a pass\'s limit is the sum over every read of every slave. Node timers fire on whole milliseconds, late by up to one, in the simulator',
    '  as in the edge, so part of what is above the limit is the simulation\'s own; mbpoll on the same line and slaves shows how much.',
    `- **Dead slave.** Unit ${DEAD_UNIT} (mid-bus) stops answering; the edge's defaults: timeout ${fmt(TIMEOUT_MS)} ms, breaker open after ${BREAKER.failures}`,
    `  consecutive faults, probe after ${fmt(BREAKER.backoffMs)} ms doubling to ${fmt(BREAKER.maxBackoffMs)} ms. Passes with a probe are listed apart.`,
    '- **mbpoll** (Debian, libmodbus): one invocation per pass, `mbpoll -m rtu -b BAUD -P none -0 -t 4 -r 0 -c N -a 1:32 -1` (process start',
    '  included), same timeout; it has no breaker.',
    '- **Points per core** (Modbus TCP): TCP simulators (devices/simulator.ts, one endpoint per bus, several unit ids behind it) in the bench',
    '  process; the edge\'s pollers in a child polling every bus back to back (after 1 s of warm-up); points = decoded point values; CPU =',
    '  the child\'s `process.cpuUsage()` (user + system) over the window. Two shapes: Neuron\'s (one device of 1,000 contiguous float32 per bus,',
    '  62 to a read) and the city\'s (the built-in water-level, manhole-cover and pipeline profiles in turn, one read each).',
    '- **Footprint**: the whole edge (edge/edge.ts: pollers, SQLite outbox with synchronous FULL, QoS 1 MQTT to an Aedes broker in the bench',
    '  process) polling N city devices once a second (at most 200 per bus), sampled after a warm-up: RSS from /proc/PID/status, CPU from',
    '  `process.cpuUsage()`.',
    '- The machine\'s 2 cores are shared with the simulators, the broker and other work (see the load average): expect noise between runs.', '',
    '### Results', '',
    '#### RTU: a pass over 32 slaves against the wire-time limit', '',
    ...rtuTable(r.rtu), '',
    '#### Modbus TCP: points per core of edge CPU', '',
    ...tcpLines(r.flat, r.mbpollTcp), '',
    '#### Footprint: resident memory and CPU per polled device (whole edge, 1 s polling)', '',
    ...footprintLines(r.footprint, r.load, r.flat.find((f) => !f.shape.startsWith('Neuron'))), '',
    '### Reproduce', '',
    '```sh',
    'npm run bench -- --only edge           # about 3 minutes; rewrites this section of bench/RESULTS.md',
    'npm run bench -- --only edge --quick   # fewer passes and sizes; nothing written',
    '```', '',
    'Needs `socat` (RTU; without it the RTU part is skipped) and `mbpoll` (the peer; without it its rows read n/a), both Debian packages.', '',
  ].join('\n');
}

/** Replaces the edge section of RESULTS.md (from its heading to the next `## `), or appends it. */
export function writeEdgeSection(section: string): void {
  const url = new URL('RESULTS.md', import.meta.url);
  const text = existsSync(url) ? readFileSync(url, 'utf8') : '# CitySteward benchmarks\n\n';
  const start = text.indexOf(`${EDGE_HEADING}\n`);
  if (start < 0) return writeFileSync(url, `${text.trimEnd()}\n\n${section.trimEnd()}\n`);
  const next = text.indexOf('\n## ', start + EDGE_HEADING.length);
  writeFileSync(url, `${text.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : text.slice(next)}`);
}

/** CPU pressure stall information, "some" avg60 in %, where the kernel has it. */
export function cpuPressure(): number | undefined {
  try {
    const m = /^some avg10=[\d.]+ avg60=([\d.]+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
