import { readFileSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CsError } from '../lib/errors.ts';
import { ConfigError, loadConfig, parseConfig } from '../lib/config.ts';
import { exitOnUncaught } from '../lib/fatal.ts';
import { createLogger, type Logger } from '../lib/log.ts';
import { loadProfiles } from '../devices/profile.ts';
import { loadDistrict } from '../devices/district.ts';
import { GatewayServiceConfig, CloudServiceConfig, DemoConfig, photosOf } from './config.ts';
import { adminHttpLimits } from '../gateway/admin-limits.ts';
import { DEMO_DISTRICT } from './demo-district.ts';
import { runUntilSignal } from './wait.ts';
import { registerTokenCommands, registerUserCommands } from './user-commands.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerConfigCommands } from './config-commands.ts';
import { registerCredentialCommands } from './credential-commands.ts';
import { registerClusterCommands } from './cluster-commands.ts';
import { registerOpen311Commands } from './open311-commands.ts';
import { registerFlowsCommand } from './flows-command.ts';

/** `citysteward`: one program, a subcommand per service. See README.md "Command line". */

const DEFAULT_DATA_DIR = './data';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer 0..65535 (0 = any free port)');
  return n;
}

function baud(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 300 || n > 921_600) throw new InvalidArgumentError('a baud rate is an integer 300..921600');
  return n;
}

const dataDirOption = () => new Option('--data-dir <dir>', 'directory for databases, credentials and state').default(DEFAULT_DATA_DIR);
const profilesOption = () => new Option('--profiles <dir>', "a directory of your own device profiles (YAML), loaded beside the built-in ones; a file with a built-in's id replaces it");
/** The profiles of a command: built-ins and the user directory (`--profiles`, else the config file's `profiles` key). */
function profilesFor(o: { profiles?: string }, cfg: { profiles?: string } | undefined, file: string | undefined, logger: Logger) {
  const userDir = o.profiles ? resolve(o.profiles) : cfg?.profiles ? (file ? relativeTo(file, cfg.profiles) : resolve(cfg.profiles)) : undefined;
  return loadProfiles({ userDir, logger });
}
const configOption = (required: boolean) => {
  const o = new Option('--config <file>', 'YAML config file');
  return required ? o.makeOptionMandatory() : o;
};


function relativeTo(file: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(file), p);
}

export function buildProgram(): Command {
  const program = new Command('citysteward')
    .description('CitySteward: city sensors to handled cases (Modbus edge, MQTT broker, case cloud).')
    .showHelpAfterError()
    // Options belong to the command they follow: `sim --data-dir D set ...` and `sim set ... --data-dir D` both work.
    .enablePositionalOptions()
    .configureOutput({ outputError: (s, write) => write(s) });

  program.command('demo')
    .description('run everything in one process tree: simulated Xiangzhou sensors, edge gateways, broker and cloud')
    .addOption(configOption(false))
    .addOption(dataDirOption())
    .option('--http-port <port>', 'HTTP port of the cloud (8080 where free; 0 = any free port)', port)
    .option('--mqtt-port <port>', 'MQTT port of the broker (1883 where free; 0 = any free port)', port)
    .option('--district <file>', 'district file (devices, buses, units)')
    .addOption(profilesOption())
    .action(async (o) => {
      const { runDemo } = await import('./run-demo.ts');
      const cfg: DemoConfig = o.config ? loadConfig(o.config, DemoConfig) : {};
      await runDemo({
        dataDir: o.dataDir,
        districtFile: o.district ?? (cfg.district && o.config ? relativeTo(o.config, cfg.district) : undefined),
        profilesDir: o.profiles ? resolve(o.profiles) : cfg.profiles && o.config ? relativeTo(o.config, cfg.profiles) : undefined,
        httpPort: o.httpPort ?? cfg.httpPort,
        mqttPort: o.mqttPort ?? cfg.mqttPort,
      });
    });

  program.command('gateway')
    .description('run the MQTT broker (Aedes) with authentication, topic ACLs and limits; optionally TLS, Redis clustering, a readings stream and an HTTP endpoint (metrics, admin API)')
    .addOption(configOption(false))
    .addOption(dataDirOption())
    .option('--mqtt-port <port>', 'MQTT port (default 1883; 0 = any free port)', port)
    .option('--host <host>', 'address to listen on')
    .option('--tls-port <port>', 'MQTT over TLS port (needs tls in the config; 0 = any free port)', port)
    .option('--http-port <port>', 'HTTP port of /metrics and the admin API (enables it; 0 = any free port)', port)
    .option('--allow-anonymous', 'DEVELOPMENT ONLY: accept clients without credentials')
    .action(async (o) => {
      const cfg = o.config ? loadConfig(o.config, GatewayServiceConfig) : parseConfig('{}', GatewayServiceConfig, '(defaults)');
      checkGatewayConfig(cfg, o.config ? resolve(o.config) : '(defaults)');
      const { buildGatewayService } = await import('../gateway/service.ts');
      const { openCredentialStore } = await import('../gateway/credentials.ts');
      const logger = createLogger({ name: 'gateway' });
      exitOnUncaught(logger);
      const file = (p: string) => (o.config ? relativeTo(o.config, p) : resolve(p));
      if (o.tlsPort !== undefined && !cfg.tls) throw new CsError('CS_CLI_USAGE', '--tls-port needs a tls section (cert, key) in the config file');
      const svc = buildGatewayService({
        settings: {
          ...cfg,
          mqtt: { ...cfg.mqtt, host: o.host ?? cfg.mqtt.host, port: o.mqttPort ?? cfg.mqtt.port },
          tls: cfg.tls ? { ...cfg.tls, host: cfg.tls.host ?? o.host, port: o.tlsPort ?? cfg.tls.port, cert: file(cfg.tls.cert), key: file(cfg.tls.key), ...(cfg.tls.ca ? { ca: file(cfg.tls.ca) } : {}) } : undefined,
          http: o.httpPort !== undefined ? { host: cfg.http?.host ?? '127.0.0.1', port: o.httpPort, limits: cfg.http?.limits } : cfg.http,
          allowAnonymous: Boolean(o.allowAnonymous) || cfg.allowAnonymous,
        },
        credentials: openCredentialStore(resolve(o.dataDir), { actor: 'gateway-admin-api' }), // its changes come through the admin API
        logger,
        // CS_GATEWAY_ADMIN_TOKEN_FILE: the token in a file (compose: the init step writes /config/gateway_admin_token).
        adminToken: process.env.CS_GATEWAY_ADMIN_TOKEN || (process.env.CS_GATEWAY_ADMIN_TOKEN_FILE ? readFileSync(process.env.CS_GATEWAY_ADMIN_TOKEN_FILE, 'utf8').trim() : undefined),
      });
      const at = await svc.start().catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          const taken = (err as { port?: number }).port;
          const mqttPort = o.mqttPort ?? cfg.mqtt.port;
          if (taken === undefined || taken === mqttPort) {
            throw new CsError('CS_CLI_PORT_IN_USE', `MQTT port ${mqttPort} is already in use (another broker, such as Mosquitto, may hold it); choose one with --mqtt-port PORT, or --mqtt-port 0 for any free port`);
          }
          throw new CsError('CS_CLI_PORT_IN_USE', `port ${taken} is already in use; choose others with --tls-port and --http-port (0 = any free port)`);
        }
        throw err;
      });
      if (cfg.allowAnonymous || o.allowAnonymous) console.log('gateway: WARNING: anonymous access is ON (development only)');
      console.log(`gateway: MQTT listening on ${at.mqtt}`);
      if (at.mqtts) console.log(`gateway: MQTT over TLS listening on ${at.mqtts}`);
      if (at.http) console.log(`gateway: HTTP on ${at.http} (/metrics, /healthz, /admin/credentials)`);
      if (at.stream) console.log(`gateway: readings appended to redis stream ${at.stream} (broker ${at.brokerId})`);
      await runUntilSignal(() => svc.stop());
    });

  program.command('cloud')
    .description('run the cloud service: ingest, cases, REST API and docs')
    .addOption(configOption(true))
    .addOption(dataDirOption())
    .option('--http-port <port>', 'HTTP port (default from config, 8080; 0 = any free port)', port)
    .addOption(profilesOption())
    .action(async (o) => {
      const cfg = loadConfig(o.config, CloudServiceConfig);
      const { buildCloud } = await import('../cloud/app.ts');
      const { webOptions } = await import('../cloud/web/config-route.ts');
      webOptions(cfg.web, resolve(o.config));
      const logger = createLogger({ name: 'cloud' });
      const profiles = profilesFor(o, cfg, o.config, logger);
      const district = loadDistrict(relativeTo(o.config, cfg.district), profiles);
      const db = databaseOf(cfg, o.config, o.dataDir);
      const photos = photosOf(cfg, db.kind, o.config, o.dataDir);
      const e = cfg.emergency;
      const [{ loadRuleSet }, { loadCatalogue }] = await Promise.all([import('../devices/rules.ts'), import('../cloud/catalogue/index.ts')]);
      const rules = cfg.rules ? loadRuleSet(relativeTo(o.config, cfg.rules), profiles, new Map(district.devices.map((d) => [d.id, d.profile]))) : undefined;
      const { loadScoringRules } = await import('../cloud/evaluation/scoring.ts');
      const scoring = cfg.evaluation?.scoring ? loadScoringRules(relativeTo(o.config, cfg.evaluation.scoring)) : undefined;
      const { loadConfigFile } = await import('../cloud/config/files.ts');
      const routing = cfg.routing ? loadConfigFile('routing', relativeTo(o.config, cfg.routing), { district, profiles }) : undefined;
      const calendar = cfg.calendar ? loadConfigFile('calendar', relativeTo(o.config, cfg.calendar), { district, profiles }) : undefined;
      const cloud = await buildCloud({
        db, district, profiles, mqtt: cfg.mqtt, scoring, logger, routing, calendar, escalation: cfg.escalation, readings: cfg.readings, retention: cfg.retention, web: cfg.web, photos, influx: cfg.influx,
        ingestBatch: { maxReadings: cfg.ingest?.batchReadings, maxDelayMs: cfg.ingest?.batchDelayMs }, http: cfg.http.limits, trustProxy: cfg.http.trustProxy, rules, workflow: cfg.workflow, catalogue: cfg.catalogue ? loadCatalogue(relativeTo(o.config, cfg.catalogue), district) : undefined,
        source: cfg.stream ? { kind: 'redis-stream', url: cfg.stream.url, stream: cfg.stream.key, group: cfg.stream.group, consumer: cfg.stream.consumer, partitions: cfg.stream.partitions, leaseMs: cfg.stream.leaseMs } : { kind: 'mqtt' },
        // README "Provisioning gateways": credentials through the brokers' admin API.
        provisioning: cfg.provisioning ? (await import('../cloud/provision/index.ts')).provisioningFromConfig(cfg.provisioning, process.env, logger.child({ mod: 'provision' })) : undefined,
        emergency: e ? {
          fast: { pollMs: e.fastPollMs }, retryMs: e.retryMs,
          policy: {
            acceptTest: e.acceptTest, acceptExercise: e.acceptExercise, ...(e.events ? { events: e.events } : {}), ...(e.signals ? { signals: e.signals } : {}),
            ...(e.geocodes || e.areaNames ? { areas: { geocodes: e.geocodes ?? [], names: e.areaNames ?? [] } } : {}),
          },
        } : undefined,
      });
      await cloud.start();
      const addr = await cloud.app.listen({ host: cfg.http.host, port: o.httpPort ?? cfg.http.port });
      console.log(`cloud: HTTP API on ${addr}/api, OpenAPI docs on ${addr}/docs`);
      await runUntilSignal(() => cloud.stop());
    });

  program.command('edge')
    .description('run an edge gateway: poll Modbus devices and publish readings over MQTT')
    .addOption(configOption(true))
    .addOption(dataDirOption())
    .addOption(profilesOption())
    .action(async (o) => {
      const { loadEdgeConfig, EdgeConfig } = await import('../edge/config.ts');
      const { buildEdge } = await import('../edge/edge.ts');
      const logger = createLogger({ name: 'edge' });
      // The file's own `profiles` key names the directory its devices' profiles come from.
      const profiles = profilesFor(o, loadConfig(o.config, EdgeConfig), o.config, logger);
      const config = loadEdgeConfig(o.config, profiles);
      const edge = buildEdge({ config, profiles, dataDir: resolve(o.dataDir), logger: logger.child({ gateway: config.gateway }) });
      await edge.start();
      const http = edge.httpAddress();
      console.log(`edge ${config.gateway}: polling ${config.devices.length} devices on ${config.buses.length} buses, publishing to ${[config.mqtt.url, ...(config.mqtt.urls ?? [])].join(', ')}${http ? `, metrics on http://${http.host}:${http.port}/metrics` : ''}`);
      await runUntilSignal(() => edge.stop());
    });

  const sim = program.command('sim')
    .description('serve simulated devices of a district: one Modbus TCP endpoint per bus, or a bus over Modbus RTU on a serial path (--rtu)')
    .addOption(configOption(false).default(DEMO_DISTRICT, 'the demo district'))
    .addOption(dataDirOption())
    .addOption(profilesOption())
    .option('--bus <id...>', 'serve only these buses')
    .option('--rtu <bus=path...>', 'serve bus BUS over Modbus RTU on the serial PATH instead of TCP, e.g. one end of `socat pty,raw,echo=0,link=/tmp/ttyS-sim pty,raw,echo=0,link=/tmp/ttyS-edge` (PATH alone when one bus is served)')
    .option('--baud <rate>', 'baud rate of the RTU lines: replies are delayed by their wire time (a pty has none)', baud)
    .addHelpText('after', '\nExample: serve bus-jida-a of the demo district over RTU and poll it with an edge whose bus is\n  { id: bus-jida-a, type: rtu, path: /tmp/ttyS-edge, baudRate: 9600 }:\n  socat pty,raw,echo=0,link=/tmp/ttyS-sim pty,raw,echo=0,link=/tmp/ttyS-edge &\n  citysteward sim --bus bus-jida-a --rtu bus-jida-a=/tmp/ttyS-sim --baud 9600')
    .action(async (o) => {
      const { runSimulators } = await import('./run-sim.ts');
      await runSimulators({
        districtFile: o.config, dataDir: resolve(o.dataDir), profilesDir: o.profiles ? resolve(o.profiles) : undefined,
        buses: o.bus, rtu: o.rtu, baudRate: o.baud, waitForSignal: runUntilSignal,
      });
    });
  const setCmd = sim.command('set <device> <assignment>')
    .description('change a simulated reading through a real Modbus write, e.g. `sim set XZ-WL-001 level_m=0.92` (buses served over TCP)')
    .addOption(configOption(false).default(DEMO_DISTRICT, 'the demo district'))
    .addOption(dataDirOption())
    .addOption(profilesOption())
    .option('--host <host>', 'Modbus TCP host (default: from DATA_DIR/sim-endpoints.json or the district)')
    .option('--port <port>', 'Modbus TCP port (default: from DATA_DIR/sim-endpoints.json or the district)', port)
    .action(async (device, assignment, o) => {
      const { simSet } = await import('./run-sim.ts');
      // Options of `sim` itself (--config, --data-dir, --profiles) may be given before `set`.
      const pick = (key: string) => (sim.getOptionValueSource(key) === 'cli' && setCmd.getOptionValueSource(key) !== 'cli' ? sim.opts()[key] : o[key]);
      const profiles = pick('profiles') as string | undefined;
      const r = await simSet({
        districtFile: pick('config'),
        dataDir: resolve(pick('dataDir')),
        profilesDir: profiles ? resolve(profiles) : undefined,
        device,
        assignment,
        host: o.host,
        port: o.port,
      });
      console.log(r);
    });

  const apiOptions = (c: Command) => c
    .option('--url <url>', 'the cloud (default: the running demo in DATA_DIR, else http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default: CS_TOKEN, else the demo token of the role)')
    .addOption(dataDirOption());

  const emergency = program.command('emergency').description('emergency mode (typhoon): switch it and see the gateways acknowledge');
  apiOptions(emergency.command('on')
    .description('enter emergency mode (commander)')
    .addOption(new Option('--level <level>', 'response level, I highest').choices(['IV', 'III', 'II', 'I']).makeOptionMandatory())
    .requiredOption('--reason <text>', 'why (kept in the audit log)'))
    .action(async (o) => {
      const { resolveTarget, callApi } = await import('./api-client.ts');
      console.log(JSON.stringify(await callApi(resolveTarget(o, 'commander'), 'POST', '/api/emergency', { mode: 'emergency', level: o.level, reason: o.reason }), null, 2));
    });
  apiOptions(emergency.command('off').description('leave emergency mode (commander)').requiredOption('--reason <text>', 'why'))
    .action(async (o) => {
      const { resolveTarget, callApi } = await import('./api-client.ts');
      console.log(JSON.stringify(await callApi(resolveTarget(o, 'commander'), 'POST', '/api/emergency', { mode: 'normal', reason: o.reason }), null, 2));
    });
  apiOptions(emergency.command('status').description('the mode, its audit log and gateway acknowledgements'))
    .action(async (o) => {
      const { resolveTarget, callApi } = await import('./api-client.ts');
      console.log(JSON.stringify(await callApi(resolveTarget(o, 'commander'), 'GET', '/api/emergency'), null, 2));
    });
  apiOptions(program.command('warning').description('send a CAP 1.2 warning (XML file) to the cloud').argument('<file>', 'CAP XML file'))
    .action(async (file, o) => {
      const { resolveTarget, callApi } = await import('./api-client.ts');
      console.log(JSON.stringify(await callApi(resolveTarget(o, 'commander'), 'POST', '/api/warnings', readFileSync(file, 'utf8'), 'application/cap+xml'), null, 2));
    });

  program.command('drill')
    .description('play a scripted scenario over the demo district and print a report')
    .argument('<scenario>', 'typhoon')
    .addOption(dataDirOption().default('./data/drill'))
    .option('--ack-bound-ms <ms>', 'fail when the last gateway acknowledges fast mode later than this after the warning (default 2000, docs/targets.md)')
    .action(async (scenario, o) => {
      if (scenario !== 'typhoon') throw new CsError('CS_CLI_USAGE', `unknown drill "${scenario}" (drills: typhoon)`);
      const ackBoundMs = o.ackBoundMs === undefined ? undefined : Number(o.ackBoundMs);
      if (ackBoundMs !== undefined && !(Number.isFinite(ackBoundMs) && ackBoundMs >= 0)) throw new CsError('CS_CLI_USAGE', `--ack-bound-ms must be a number of milliseconds >= 0, got "${o.ackBoundMs}"`);
      const { runTyphoonDrill } = await import('./drill.ts');
      const report = await runTyphoonDrill({ dataDir: resolve(o.dataDir), print: (s) => console.log(s), ackBoundMs });
      if (!report.ok) process.exitCode = 1;
    });

  for (const register of [registerUserCommands, registerTokenCommands, registerAuditCommands, registerConfigCommands, registerCredentialCommands, registerClusterCommands, registerOpen311Commands, registerFlowsCommand]) register(program, { configOption, dataDirOption, databaseOf: (file: string, dataDir: string) => databaseOf(loadConfig(file, CloudServiceConfig), file, dataDir) });

  return program;
}

/** What the schema cannot say: the admin limits checked together (lib/http-limits.ts), backoff under its cap. */
function checkGatewayConfig(cfg: GatewayServiceConfig, file: string): void {
  if (cfg.http) {
    try {
      adminHttpLimits(cfg.http.limits);
    } catch (err) {
      throw new ConfigError('CS_CONFIG_INVALID', file, [{ key: 'http.limits', message: (err as Error).message }]);
    }
  }
  if (cfg.logins.backoffMs > cfg.logins.maxBackoffMs) {
    throw new ConfigError('CS_CONFIG_INVALID', file, [{ key: 'logins.backoffMs', message: `must not exceed logins.maxBackoffMs (${cfg.logins.maxBackoffMs})` }]);
  }
}

/** The cloud's database from its config: a PostgreSQL URL, or an SQLite file in the data directory. */
function databaseOf(cfg: CloudServiceConfig, file: string, dataDir: string): { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string } {
  return cfg.database.kind === 'postgres'
    ? { kind: 'postgres', url: requireUrl(file, cfg.database.url) }
    : { kind: 'sqlite', file: resolve(dataDir, cfg.database.file) };
}

function requireUrl(file: string, url: string | undefined): string {
  if (!url) throw new ConfigError('CS_CONFIG_INVALID', file, [{ key: 'database.url', message: 'is required when database.kind is postgres' }]);
  return url;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CsError) {
      console.error(`citysteward: ${err.message} [${err.code}]`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

// Only used by the bin entry; importing this module for tests does not run it.
if (process.argv[1] && /citysteward(\.js)?$/.test(process.argv[1])) {
  await main();
}

