import { resolve } from 'node:path';
import { createLogger, logFormat } from '../lib/log.ts';
import { isFinal } from '../lib/vocabulary.ts';
import { buildDemo } from './demo.ts';
import { runUntilSignal } from './wait.ts';

const shanghai = (iso: string) => new Date(iso).toLocaleString('sv-SE', { timeZone: 'Asia/Shanghai' }).slice(0, 16);

interface CaseSummary { id: string; device: string; hazard: string; severity: string; unit: string; deadline: string; state: string; breachCount: number; title?: string }

/** `citysteward demo`: starts the demo, tells the operator where to look, reports cases as they open. */
export async function runDemo(o: { dataDir: string; districtFile?: string; profilesDir?: string; httpPort?: number; mqttPort?: number }): Promise<void> {
  // One console: on a terminal the demo's own lines are plain text and the services' logs pretty;
  // otherwise everything is JSON lines (the demo's lines as `info` records with `event: "demo"`).
  const format = logFormat();
  const root = createLogger({ name: 'demo', level: 'info' }, format);
  const logger = root.child({}, { level: process.env.CS_LOG_LEVEL ?? 'warn' });
  const demo = buildDemo({ dataDir: resolve(o.dataDir), districtFile: o.districtFile, profilesDir: o.profilesDir, httpPort: o.httpPort, mqttPort: o.mqttPort, logger });
  const started = Date.now();
  const at = await demo.start();
  const d = demo.district;
  const say = format === 'pretty'
    ? (s: string) => console.log(`[demo +${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`)
    : (s: string) => root.info({ event: 'demo' }, s);
  say(`${d.name}: ${d.devices.length} simulated devices on ${d.buses.length} Modbus TCP buses, ${d.gateways.length} edge gateways`);
  say(`MQTT broker   ${at.mqtt}${at.mqtt.endsWith(':1883') ? '' : '  (1883 was taken; another broker holds it)'}`);
  say(`Cloud API     ${at.http}/api   OpenAPI docs ${at.http}/docs   health ${at.http}/healthz`);
  for (const [bus, addr] of Object.entries(at.buses)) say(`Modbus bus    ${bus} on ${addr}`);
  say(`Web app       ${at.http}/   sign in as one of these (users and passwords in ${at.usersFile}):`);
  // Passwords on a terminal only: JSON lines are log records, and passwords are never logged.
  for (const u of demo.users) say(`                ${u.username.padEnd(20)} ${format === 'pretty' ? u.password : '(password in the file)'}   (${u.role}${u.unit ? `, ${u.unit}` : ''})`);
  say(`API tokens    ${at.tokensFile} (admin, operator, commander, verifier, crew:UNIT)${at.revokedTokens ? `; the previous run's ${at.revokedTokens} tokens are revoked` : ''}`);
  say(`watch MQTT    mosquitto_sub -h ${new URL(at.mqtt).hostname} -p ${new URL(at.mqtt).port} -u observer -P "$(node -p "require('${at.observerFile}').password")" -t 'cs/v1/#' -v   (read-only identity)`);
  say(`try: curl -H "Authorization: Bearer $(node -p "require('${at.tokensFile}').operator")" ${at.http}/api/cases`);
  say(`a scripted breach (XZ-WL-001, Fenghuang Road underpass) floods within about 15 s; or make one yourself:`);
  say(`     npx citysteward sim set XZ-WL-002 level_m=0.9 --data-dir ${o.dataDir}`);

  // Cases of earlier runs are summed up once, not reprinted as opened.
  const listCases = async (): Promise<CaseSummary[] | undefined> => {
    const res = await demo.cloud.app.inject({ url: '/api/cases?limit=100', headers: { authorization: `Bearer ${demo.tokens.operator}` } });
    if (res.statusCode !== 200) return undefined;
    const body = res.json() as { items?: CaseSummary[] } | CaseSummary[];
    return Array.isArray(body) ? body : body.items ?? [];
  };
  const seen = new Map<string, string>();
  const earlier = (await listCases()) ?? [];
  for (const c of earlier) seen.set(c.id, c.severity);
  const stillOpen = earlier.filter((c) => !isFinal(c.state)).length;
  if (earlier.length) say(`${earlier.length} cases from earlier runs of ${o.dataDir} (${stillOpen} still open): ${at.http}/api/cases`);
  const watch = setInterval(async () => {
    try {
      const items = await listCases();
      if (!items) return;
      for (const c of items) {
        // Report openings and severity changes; repeat breaches only update the case's count.
        const before = seen.get(c.id);
        if (before === undefined) say(`CASE ${c.id} opened: ${c.hazard} (${c.severity}) at ${c.device}, dispatched to ${c.unit}, due ${c.deadline} (${shanghai(c.deadline)} Asia/Shanghai) -> ${at.http}/api/cases/${c.id}`);
        else if (before !== c.severity) say(`CASE ${c.id} updated: ${c.hazard} now ${c.severity} at ${c.device} after ${c.breachCount} breaches`);
        seen.set(c.id, c.severity);
      }
    } catch (err) {
      logger.warn({ err }, 'demo: case watch failed');
    }
  }, 1000);

  await runUntilSignal(async () => {
    clearInterval(watch);
    say('stopping');
    await demo.stop();
  });
}
