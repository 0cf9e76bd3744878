import { resolve } from 'node:path';
import { createLogger } from '../lib/log.ts';
import { buildDemo } from './demo.ts';
import { runUntilSignal } from './wait.ts';

const shanghai = (iso: string) => new Date(iso).toLocaleString('sv-SE', { timeZone: 'Asia/Shanghai' }).slice(0, 16);

interface CaseSummary { id: string; device: string; hazard: string; severity: string; unit: string; deadline: string; state: string; breachCount: number; title?: string }

/** `citysteward demo`: starts the demo, tells the operator where to look, reports cases as they open. */
export async function runDemo(o: { dataDir: string; districtFile?: string; httpPort?: number; mqttPort?: number }): Promise<void> {
  const logger = createLogger({ name: 'demo', level: process.env.CS_LOG_LEVEL ?? 'warn' });
  const demo = buildDemo({ dataDir: resolve(o.dataDir), districtFile: o.districtFile, httpPort: o.httpPort, mqttPort: o.mqttPort, logger });
  const started = Date.now();
  const at = await demo.start();
  const d = demo.district;
  const say = (s: string) => console.log(`[demo +${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
  say(`${d.name}: ${d.devices.length} simulated devices on ${d.buses.length} Modbus TCP buses, ${d.gateways.length} edge gateways`);
  say(`MQTT broker   ${at.mqtt}${at.mqtt.endsWith(':1883') ? '' : '  (1883 was taken; another broker holds it)'}`);
  say(`Cloud API     ${at.http}/api   OpenAPI docs ${at.http}/docs   health ${at.http}/healthz`);
  for (const [bus, addr] of Object.entries(at.buses)) say(`Modbus bus    ${bus} on ${addr}`);
  say(`Dashboard     ${at.http}/#token=${demo.tokens.operator}   (open in a browser: the sensor map and open cases)`);
  say(`API tokens    ${at.tokensFile} (admin, operator, commander, verifier, crew:UNIT)`);
  say(`try: curl -H "Authorization: Bearer $(node -p "require('${at.tokensFile}').operator")" ${at.http}/api/cases`);
  say(`a scripted breach (XZ-WL-001, Fenghuang Road underpass) floods within about 15 s; or make one yourself:`);
  say(`     npx citysteward sim set XZ-WL-002 level_m=0.9 --data-dir ${o.dataDir}`);

  const seen = new Map<string, string>();
  const watch = setInterval(async () => {
    try {
      const res = await demo.cloud.app.inject({ url: '/api/cases?limit=100', headers: { authorization: `Bearer ${demo.tokens.operator}` } });
      if (res.statusCode !== 200) return;
      const body = res.json() as { items?: CaseSummary[] } | CaseSummary[];
      const items = Array.isArray(body) ? body : body.items ?? [];
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
