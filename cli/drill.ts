import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDemo, type Demo } from './demo.ts';
import { writePoint } from '../devices/sim-client.ts';
import { eventuallyTrue } from './wait.ts';

/**
 * `citysteward drill typhoon`: a scripted typhoon over the demo district, end to end on loopback.
 * A CAP warning (status Exercise, which the drill's own cloud is set to accept) arrives; the mode
 * switches and every edge gateway acknowledges fast polling; water levels rise, covers tilt, a well
 * floods, a main loses pressure; the warning is cancelled. The report gives the timings, the cases,
 * the duplicates (must be zero) and every emergency deadline checked against the 12-hour cap.
 */

const CAP_12H = 12 * 3600_000;
const FIXTURE = fileURLToPath(new URL('../test/fixtures/cap/orange-typhoon.xml', import.meta.url));

interface CaseJson { id: string; device: string; hazard: string; severity: string; class: string; state: string; unit: string; openedAt: string; deadline: string; emergency: boolean; emergencyPeriod: number | null }

export interface DrillReport {
  ok: boolean;
  warningToModeMs: number;
  warningToLastAckMs: number;
  gateways: number;
  casesOpened: number;
  duplicates: number;
  emergencyCases: number;
  deadlinesOverCap: string[];
  cancelToNormalMs: number;
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

export async function runTyphoonDrill(o: { dataDir: string; print: (s: string) => void; pollMs?: number; fastPollMs?: number }): Promise<DrillReport> {
  const runDir = join(o.dataDir, `typhoon-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const pollMs = o.pollMs ?? 1000;
  const demo = buildDemo({ dataDir: runDir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs, fastPollMs: o.fastPollMs ?? 250, acceptExerciseWarnings: true });
  const started = Date.now();
  const say = (s: string) => o.print(`[drill +${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
  try {
    await demo.start();
    const api = async (method: 'GET' | 'POST', url: string, body?: string, role = 'commander') => {
      const res = await demo.cloud.app.inject({ method, url, payload: body, headers: { authorization: `Bearer ${demo.tokens[role]}`, ...(body ? { 'content-type': 'application/cap+xml' } : {}) } });
      if (res.statusCode >= 400) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.json();
    };
    say(`demo district up: ${demo.district.devices.length} devices, ${demo.district.gateways.length} gateways, poll ${pollMs} ms`);
    await eventuallyTrue(async () => ((await api('GET', '/api/devices')) as { items: { status: string }[] }).items.every((d) => d.status === 'online'), 30_000);
    say('every sensor reporting; sending the typhoon warning (orange signal)');

    const alertId = `DRILL-TY-${Date.now()}`;
    const t0 = Date.now();
    const w = await api('POST', '/api/warnings', capXml('alert', alertId)) as { mode: { mode: string; level: string } };
    const warningToModeMs = Date.now() - t0;
    if (w.mode.mode !== 'emergency') throw new Error(`the warning did not switch the mode: ${JSON.stringify(w)}`);
    say(`emergency mode level ${w.mode.level} after ${warningToModeMs} ms`);
    const emergency = demo.cloud.emergency!;
    await withTimeout(emergency.fanout.settled(), 30_000, 'gateway acknowledgements');
    const warningToLastAckMs = Date.now() - t0;
    say(`all ${demo.district.gateways.length} gateways acknowledged fast mode ${warningToLastAckMs} ms after the warning`);

    // The typhoon: real Modbus writes to the simulators.
    const write = async (device: string, key: string, value: string) => {
      const d = demo.district.devices.find((x) => x.id === device)!;
      const port = demo.simulators.get(d.bus)!.port;
      const profile = demo.profiles.get(d.profile)!;
      await writePoint({ host: '127.0.0.1', port, unitId: d.unitId, profile, key, value });
    };
    const levels = demo.district.devices.filter((d) => d.profile === 'water-level').map((d) => d.id);
    const covers = demo.district.devices.filter((d) => d.profile === 'manhole-cover').map((d) => d.id);
    const mains = demo.district.devices.filter((d) => d.profile === 'pipeline').map((d) => d.id);
    say(`water rises at ${levels.length} waterlogging points`);
    for (const id of levels) await write(id, 'level_m', '0.75');
    await sleep(2 * pollMs);
    for (const [i, id] of levels.entries()) await write(id, 'level_m', i < 3 ? '0.97' : '0.9');
    say(`covers tilt at ${covers.slice(0, 3).join(', ')}; a well floods at ${covers[3]}`);
    for (const id of covers.slice(0, 3)) await write(id, 'tilt_deg', '35');
    await write(covers[3], 'water_depth_m', '0.8');
    say(`the main at ${mains[1]} loses pressure`);
    await write(mains[1], 'pressure_mpa', '0.05');
    // Wait for the hazards the script raised (a tilt must be held 2 s before it counts), then lift the warning.
    const expected = [...levels.map((d) => `${d}/waterlogging`), ...covers.slice(0, 3).map((d) => `${d}/cover-open`), `${covers[3]}/water-in-well`, `${mains[1]}/pressure-low`];
    try {
      await eventuallyTrue(async () => {
        const seen = new Set(((await api('GET', '/api/cases?limit=1000')) as { items: CaseJson[] }).items.map((c) => `${c.device}/${c.hazard}`));
        return expected.every((k) => seen.has(k));
      }, 30_000, 250);
      say(`all ${expected.length} hazards of the script are cases`);
    } catch {
      say('not every scripted hazard became a case within 30 s');
    }
    await sleep(2 * pollMs);

    const t1 = Date.now();
    await api('POST', '/api/warnings', capXml('cancel', `DRILL-TY-CANCEL-${Date.now()}`, alertId));
    await withTimeout(emergency.fanout.settled(), 30_000, 'gateway acknowledgements of normal mode');
    const cancelToNormalMs = Date.now() - t1;
    say(`warning cancelled: normal mode, every gateway back to normal polling after ${cancelToNormalMs} ms`);

    const cases = ((await api('GET', '/api/cases?limit=1000')) as { items: CaseJson[] }).items;
    const open = cases.filter((c) => c.state !== 'closed' && c.state !== 'void');
    const groups = new Map<string, number>();
    for (const c of open) groups.set(`${c.device}/${c.hazard}`, (groups.get(`${c.device}/${c.hazard}`) ?? 0) + 1);
    const duplicates = [...groups.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
    // The cases of this emergency period keep their period after the mode ended (for evaluation).
    const emergencyCases = cases.filter((c) => c.emergencyPeriod !== null);
    const overCap = emergencyCases.filter((c) => Date.parse(c.deadline) - Date.parse(c.openedAt) > CAP_12H).map((c) => c.id);
    const report: DrillReport = {
      ok: duplicates === 0 && overCap.length === 0 && emergencyCases.length > 0,
      warningToModeMs, warningToLastAckMs, gateways: demo.district.gateways.length,
      casesOpened: cases.length, duplicates, emergencyCases: emergencyCases.length, deadlinesOverCap: overCap, cancelToNormalMs,
    };
    o.print('');
    o.print('Typhoon drill report');
    o.print(`  warning to emergency mode            ${warningToModeMs} ms`);
    o.print(`  warning to last gateway ack          ${warningToLastAckMs} ms (${report.gateways} gateways)`);
    o.print(`  cancel to every gateway back normal  ${cancelToNormalMs} ms`);
    o.print(`  cases opened                         ${cases.length} (${emergencyCases.length} in the emergency period, flag kept after it ended)`);
    for (const c of cases) o.print(`    ${c.id}  ${c.hazard.padEnd(14)} ${c.severity.padEnd(8)} ${c.device.padEnd(11)} ${c.unit.padEnd(13)} due ${c.deadline} (${((Date.parse(c.deadline) - Date.parse(c.openedAt)) / 3600_000).toFixed(1)} h)`);
    o.print(`  duplicate open cases                 ${duplicates} ${duplicates === 0 ? '(none: one open case per asset and hazard)' : '(FAIL)'}`);
    o.print(`  emergency deadlines over 12 h        ${overCap.length} ${overCap.length === 0 ? '(every one within the cap)' : `(FAIL: ${overCap.join(', ')})`}`);
    o.print(`  result                               ${report.ok ? 'PASS' : 'FAIL'}`);
    o.print(`  data                                 ${runDir}`);
    return report;
  } finally {
    await demo.stop();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

export type { Demo };
