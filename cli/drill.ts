import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { District } from '../devices/district.ts';
import { DEFAULT_FAST_POLL_MS, EMERGENCY_CAP_HOURS, isFinal } from '../lib/vocabulary.ts';
import { buildDemo, type Demo } from './demo.ts';
import { writePoint } from '../devices/sim-client.ts';
import { eventuallyTrue } from './wait.ts';

/**
 * `citysteward drill typhoon`: a scripted typhoon over the demo district, end to end on loopback.
 * A CAP warning (status Exercise, which the drill's own cloud is set to accept) arrives; the mode
 * switches and every edge gateway acknowledges fast polling; water levels rise, covers tilt, a well
 * floods, a main loses pressure, a sensor's battery runs low; the warning is cancelled. The drill
 * fails (non-zero exit) when a scripted hazard never became a case, when the gateways' last
 * acknowledgement came later than the bound, on a duplicate open case, or on an emergency deadline
 * past the 12-hour cap (device health keeps its normal period: docs/domain.md#the-case).
 */

const CAP_MS = EMERGENCY_CAP_HOURS * 3600_000;
/** docs/targets.md: every connected gateway acknowledges within about 2 s of the warning (10,000 of them). */
export const DEFAULT_ACK_BOUND_MS = 2000;
const FIXTURE = fileURLToPath(new URL('../test/fixtures/cap/orange-typhoon.xml', import.meta.url));

interface CaseJson { id: string; device: string; hazard: string; severity: string; class: string; state: string; unit: string; openedAt: string; deadline: string; emergency: boolean; emergencyPeriod: number | null }

/** One step of the script: Modbus writes to the simulators, and the `device/hazard` cases they must open. */
export interface DrillStep {
  say: string;
  writes: { device: string; point: string; value: string }[];
  expect: string[];
  /** Pause after the writes (e.g. to let a level rise in two stages). */
  pauseMs?: number;
}

export interface DrillOptions {
  dataDir: string;
  print: (s: string) => void;
  pollMs?: number;
  fastPollMs?: number;
  /** The script; `typhoonScript` by default. */
  script?: (district: District, pollMs: number) => DrillStep[];
  /** Fail when the last gateway acknowledges fast mode later than this after the warning. */
  ackBoundMs?: number;
  /** How long to wait for acknowledgements and for the scripted hazards to become cases. */
  waitMs?: number;
}

export interface DrillReport {
  ok: boolean;
  failures: string[];
  warningToModeMs: number;
  warningToLastAckMs: number | null;
  ackBoundMs: number;
  /** Per gateway: ms from the command's publish to its acknowledgement. */
  acks: { gateway: string; afterMs: number }[];
  unacknowledged: string[];
  gateways: number;
  casesOpened: number;
  missingHazards: string[];
  duplicates: number;
  emergencyCases: number;
  deadlinesOverCap: string[];
  cancelToNormalMs: number | null;
}

/** The typhoon over the demo district. */
export function typhoonScript(district: District, pollMs: number): DrillStep[] {
  const of = (profile: string) => district.devices.filter((d) => d.profile === profile).map((d) => d.id);
  const [levels, covers, mains] = [of('water-level'), of('manhole-cover'), of('pipeline')];
  return [
    { say: `water rises at ${levels.length} waterlogging points`, writes: levels.map((device) => ({ device, point: 'level_m', value: '0.75' })), expect: [], pauseMs: 2 * pollMs },
    { say: 'and keeps rising', writes: levels.map((device, i) => ({ device, point: 'level_m', value: i < 3 ? '0.97' : '0.9' })), expect: levels.map((d) => `${d}/waterlogging`) },
    { say: `covers tilt at ${covers.slice(0, 3).join(', ')}; a well floods at ${covers[3]}`, writes: [...covers.slice(0, 3).map((device) => ({ device, point: 'tilt_deg', value: '35' })), { device: covers[3], point: 'water_depth_m', value: '0.8' }], expect: [...covers.slice(0, 3).map((d) => `${d}/cover-open`), `${covers[3]}/water-in-well`] },
    { say: `the main at ${mains[1]} loses pressure`, writes: [{ device: mains[1], point: 'pressure_mpa', value: '0.05' }], expect: [`${mains[1]}/pressure-low`] },
    { say: `the battery of ${covers[4]} runs low (device health: its normal period)`, writes: [{ device: covers[4], point: 'battery_pct', value: '12' }], expect: [`${covers[4]}/low-battery`] },
  ];
}

function capXml(kind: 'alert' | 'cancel', id: string, ref?: string): string {
  const sent = new Date().toISOString().replace(/\.\d+Z$/, '+00:00');
  if (kind === 'alert') {
    return readFileSync(FIXTURE, 'utf8')
      .replace(/<identifier>[^<]+</, `<identifier>${id}<`)
      .replace(/<sent>[^<]+</, `<sent>${sent}<`)
      .replace('<status>Actual</status>', '<status>Exercise</status>');
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>${id}</identifier><sender>zhuhai.weather@gd.cma.example</sender><sent>${sent}</sent>
  <status>Exercise</status><msgType>Cancel</msgType><scope>Public</scope>
  <references>zhuhai.weather@gd.cma.example,${ref},${sent}</references>
</alert>`;
}

export async function runTyphoonDrill(o: DrillOptions): Promise<DrillReport> {
  const runDir = join(o.dataDir, `typhoon-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const pollMs = o.pollMs ?? 1000;
  const ackBoundMs = o.ackBoundMs ?? DEFAULT_ACK_BOUND_MS;
  const waitMs = o.waitMs ?? 30_000;
  const demo = buildDemo({ dataDir: runDir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs, fastPollMs: o.fastPollMs ?? DEFAULT_FAST_POLL_MS, acceptExerciseWarnings: true });
  const started = Date.now();
  const say = (s: string) => o.print(`[drill +${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
  const failures: string[] = [];
  const ms = (from: number) => Math.round((performance.now() - from) * 10) / 10;
  try {
    await demo.start();
    const api = async (method: 'GET' | 'POST', url: string, body?: string, role = 'commander') => {
      const res = await demo.cloud.app.inject({ method, url, payload: body, headers: { authorization: `Bearer ${demo.tokens[role]}`, ...(body ? { 'content-type': 'application/cap+xml' } : {}) } });
      if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.json();
    };
    const cases = async () => ((await api('GET', '/api/cases?limit=1000')) as { items: CaseJson[] }).items;
    say(`demo district up: ${demo.district.devices.length} devices, ${demo.district.gateways.length} gateways, poll ${pollMs} ms`);
    await eventuallyTrue(async () => ((await api('GET', '/api/devices')) as { items: { link: string }[] }).items.every((d) => d.link === 'online'), waitMs);
    say('every sensor reporting; sending the typhoon warning (orange signal)');

    const alertId = `DRILL-TY-${Date.now()}`;
    const t0 = performance.now();
    const w = await api('POST', '/api/warnings', capXml('alert', alertId)) as { mode: { mode: string; level: string } };
    const warningToModeMs = ms(t0);
    if (w.mode.mode !== 'emergency') throw new Error(`the warning did not switch the mode: ${JSON.stringify(w)}`);
    say(`emergency mode level ${w.mode.level} after ${warningToModeMs} ms`);
    const emergency = demo.cloud.emergency!;
    const acked = await settle(emergency.fanout.settled(), waitMs);
    const warningToLastAckMs = acked ? ms(t0) : null;
    const fan = emergency.fanout.status();
    const acks = fan.acknowledged.map((a) => ({ gateway: a.gateway, afterMs: a.afterMs }));
    const unacknowledged = fan.missing.map((m) => m.gateway);
    if (!acked) failures.push(`gateways without an acknowledgement after ${waitMs} ms: ${unacknowledged.join(', ')}`);
    else if (warningToLastAckMs! > ackBoundMs) failures.push(`last gateway acknowledgement ${warningToLastAckMs} ms after the warning, over the bound of ${ackBoundMs} ms`);
    say(acked ? `all ${demo.district.gateways.length} gateways acknowledged fast mode ${warningToLastAckMs} ms after the warning` : `${unacknowledged.length} gateways did not acknowledge`);

    // The typhoon: real Modbus writes to the simulators.
    const script = (o.script ?? typhoonScript)(demo.district, pollMs);
    for (const step of script) {
      say(step.say);
      for (const wr of step.writes) {
        const d = demo.district.devices.find((x) => x.id === wr.device);
        if (!d) throw new Error(`the script writes to ${wr.device}, which is not in the district`);
        await writePoint({ host: '127.0.0.1', port: demo.simulators.get(d.bus)!.port, unitId: d.unitId, profile: demo.profiles.get(d.profile)!, key: wr.point, value: wr.value });
      }
      if (step.pauseMs) await sleep(step.pauseMs);
    }
    // Every scripted hazard must become a case (a tilt must be held 2 s before it counts).
    const expected = script.flatMap((s) => s.expect);
    let seen = new Set<string>();
    await eventuallyTrue(async () => {
      seen = new Set((await cases()).map((c) => `${c.device}/${c.hazard}`));
      return expected.every((k) => seen.has(k));
    }, waitMs, 250).catch(() => undefined);
    const missingHazards = expected.filter((k) => !seen.has(k));
    if (missingHazards.length) failures.push(`scripted hazards that never became a case within ${waitMs} ms: ${missingHazards.join(', ')}`);
    say(missingHazards.length ? `${missingHazards.length} of ${expected.length} scripted hazards are not cases` : `all ${expected.length} hazards of the script are cases`);
    await sleep(2 * pollMs);

    const t1 = performance.now();
    await api('POST', '/api/warnings', capXml('cancel', `DRILL-TY-CANCEL-${Date.now()}`, alertId));
    const normal = await settle(emergency.fanout.settled(), waitMs);
    const cancelToNormalMs = normal ? ms(t1) : null;
    if (!normal) failures.push(`gateways not back to normal polling after ${waitMs} ms: ${emergency.fanout.status().missing.map((m) => m.gateway).join(', ')}`);
    say(normal ? `warning cancelled: normal mode, every gateway back to normal polling after ${cancelToNormalMs} ms` : 'warning cancelled; not every gateway acknowledged normal mode');

    const all = await cases();
    const groups = new Map<string, number>();
    for (const c of all.filter((x) => !isFinal(x.state))) groups.set(`${c.device}/${c.hazard}`, (groups.get(`${c.device}/${c.hazard}`) ?? 0) + 1);
    const duplicates = [...groups.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
    if (duplicates) failures.push(`${duplicates} duplicate open cases`);
    // The period's cases keep it after the mode ended (for evaluation); device health keeps its normal period.
    const emergencyCases = all.filter((c) => c.emergencyPeriod !== null && c.class !== 'device-health');
    const overCap = emergencyCases.filter((c) => Date.parse(c.deadline) - Date.parse(c.openedAt) > CAP_MS).map((c) => c.id);
    if (overCap.length) failures.push(`emergency deadlines over ${EMERGENCY_CAP_HOURS} h: ${overCap.join(', ')}`);
    if (emergencyCases.length === 0) failures.push('no case in the emergency period');
    const report: DrillReport = {
      ok: failures.length === 0, failures,
      warningToModeMs, warningToLastAckMs, ackBoundMs, acks, unacknowledged, gateways: demo.district.gateways.length,
      casesOpened: all.length, missingHazards, duplicates, emergencyCases: emergencyCases.length, deadlinesOverCap: overCap, cancelToNormalMs,
    };
    printReport(o.print, report, all, runDir);
    return report;
  } finally {
    await demo.stop();
  }
}

function printReport(print: (s: string) => void, r: DrillReport, all: CaseJson[], runDir: string): void {
  const mark = (bad: boolean, good: string, fail: string) => (bad ? `(FAIL: ${fail})` : `(${good})`);
  const lastAck = r.warningToLastAckMs;
  print('');
  print('Typhoon drill report');
  print(`  warning to emergency mode            ${r.warningToModeMs} ms`);
  print(`  warning to last gateway ack          ${lastAck ?? 'never'} ms (${r.gateways} gateways, bound ${r.ackBoundMs} ms) ${mark(lastAck === null || lastAck > r.ackBoundMs, 'within the bound', lastAck === null ? `unacknowledged: ${r.unacknowledged.join(', ')}` : 'over the bound')}`);
  for (const a of r.acks) print(`    ${a.gateway.padEnd(20)} acknowledged ${a.afterMs} ms after the command`);
  print(`  cancel to every gateway back normal  ${r.cancelToNormalMs ?? 'never'} ms`);
  print(`  cases opened                         ${all.length} (${r.emergencyCases} in the emergency period, flag kept after it ended)`);
  for (const c of all) print(`    ${c.id}  ${c.hazard.padEnd(14)} ${c.severity.padEnd(8)} ${c.device.padEnd(11)} ${c.unit.padEnd(13)} due ${c.deadline} (${((Date.parse(c.deadline) - Date.parse(c.openedAt)) / 3600_000).toFixed(1)} h)`);
  print(`  scripted hazards without a case      ${r.missingHazards.length} ${mark(r.missingHazards.length > 0, 'every one is a case', r.missingHazards.join(', '))}`);
  print(`  duplicate open cases                 ${r.duplicates} ${mark(r.duplicates > 0, 'none: one open case per asset and hazard', 'duplicates')}`);
  print(`  emergency deadlines over 12 h        ${r.deadlinesOverCap.length} ${mark(r.deadlinesOverCap.length > 0, 'every one within the cap; device health keeps its period', r.deadlinesOverCap.join(', '))}`);
  for (const f of r.failures) print(`  FAIL                                 ${f}`);
  print(`  result                               ${r.ok ? 'PASS' : 'FAIL'}`);
  print(`  data                                 ${runDir}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `p` settled within `ms`. */
async function settle(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

export type { Demo };
