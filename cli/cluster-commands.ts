import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CsError } from '../lib/errors.ts';
import type { UserCommandHelpers } from './user-commands.ts';

/**
 * `citysteward cluster up`: the city-scale topology as processes on this machine (cli/cluster.ts);
 * `citysteward cluster init`: the init step of the compose deployment (credentials and configs, cli/cluster-init.ts).
 */
export function registerClusterCommands(program: Command, _h: UserCommandHelpers): void {
  const count = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new InvalidArgumentError('a count 1..16');
    return n;
  };
  const cluster = program.command('cluster').description('the city-scale topology: brokers on Redis, cloud workers on PostgreSQL, edges and simulators');
  cluster.command('up')
    .description('start two brokers, two cloud workers, the simulators and both edges of the demo district as separate processes (no Docker); ports chosen by the system; Ctrl-C stops them cleanly')
    .option('--dir <dir>', 'configs, secrets, data and logs of the cluster (a second `up` resumes it)', './data/cluster')
    .option('--redis-url <url>', 'Redis of the brokers and the readings stream', 'redis://127.0.0.1:6379')
    .option('--database-url <url>', 'PostgreSQL database of the cloud workers (created when missing)', 'postgresql://postgres@127.0.0.1:5432/citysteward_cluster')
    .option('--district <file>', 'district file (default: the demo district)')
    .option('--brokers <n>', 'brokers', count, 2)
    .option('--clouds <n>', 'cloud workers', count, 2)
    .option('--poll-ms <ms>', 'poll interval of every device', (v) => Number(v))
    .option('--no-scenarios', "don't play the district's scripted scenarios")
    .action(async (o) => {
      const { buildCluster } = await import('./cluster.ts');
      const { runUntilSignal } = await import('./wait.ts');
      const c = buildCluster({
        dir: resolve(o.dir), redisUrl: o.redisUrl, databaseUrl: o.databaseUrl, districtFile: o.district ? resolve(o.district) : undefined,
        brokers: o.brokers, clouds: o.clouds, pollMs: o.pollMs, scenarios: o.scenarios, logLevel: process.env.CS_LOG_LEVEL,
      });
      // A signal while starting stops what is already running too.
      let stopping: Promise<void> | undefined;
      const onSignal = () => { stopping ??= c.stop().then(() => process.exit(130)); };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const at = await c.start().catch((err: Error) => {
        throw new CsError('CS_CLI_CLUSTER_START', `the cluster did not start (logs in ${resolve(o.dir, 'logs')}): ${err.message}`);
      });
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const say = (s: string) => console.log(`cluster: ${s}`);
      at.brokers.forEach((u, i) => say(`broker-${i + 1}  ${u}  (pid ${c.services.get(`broker-${i + 1}`)!.pid})`));
      at.clouds.forEach((u, i) => say(`cloud-${i + 1}   ${u}/api  (pid ${c.services.get(`cloud-${i + 1}`)!.pid})`));
      for (const [gw, m] of Object.entries(at.edges)) say(`edge ${gw}  ${m || ''}  (pid ${c.services.get(`edge-${gw}`)!.pid})`);
      say(`stream  ${at.redis.stream} on ${at.redis.url}; database ${at.database.replace(/:[^:@/]*@/, ':***@')}`);
      say(`tokens  ${at.tokensFile}   logs ${at.logs}   MQTT passwords ${resolve(o.dir, 'config', 'secrets.json')}`);
      say('running; Ctrl-C (SIGINT) or SIGTERM stops every process cleanly');
      await runUntilSignal(async () => {
        say('stopping');
        await c.stop();
      });
    });
  cluster.command('init')
    .description("the compose deployment's init step: MQTT credentials on the brokers' shared credentials file, a PostgreSQL password, and every service's config (idempotent)")
    .option('--out <dir>', 'where the configs and secrets go', '/config')
    .option('--credentials-dir <dir>', "the brokers' shared data directory", '/gateway-data')
    .option('--district <file>', 'district file as every service reads it', '/app/deploy/district.yaml')
    .option('--brokers <urls>', 'broker URLs, comma-separated', 'mqtt://gateway-1:1883,mqtt://gateway-2:1883')
    .option('--broker-admin <urls>', "the brokers' admin API as the clouds reach it (gateway.yaml http on port 9883), comma-separated", 'http://gateway-1:9883,http://gateway-2:9883')
    .option('--redis-url <url>', 'Redis of the brokers and the stream', 'redis://redis:6379/0')
    .option('--key-prefix <prefix>', "the city's Redis key prefix", 'cs:')
    .option('--database-url <url>', 'the clouds\' database; {password} is replaced by the generated password', 'postgresql://citysteward:{password}@postgres:5432/citysteward')
    .option('--clouds <n>', 'cloud workers', count, 2)
    .option('--photos-dir <dir>', 'case photos, shared by the cloud workers', '/photos')
    .action(async (o) => {
      const { loadDistrict } = await import('../devices/district.ts');
      const { loadProfiles } = await import('../devices/profile.ts');
      const { provisionCluster, writeClusterConfigs } = await import('./cluster-init.ts');
      const district = loadDistrict(resolve(o.district), loadProfiles());
      const dir = resolve(o.out);
      const secrets = provisionCluster({ dir, credentialsDir: resolve(o.credentialsDir), district });
      writeClusterConfigs({
        dir, credentialsDir: resolve(o.credentialsDir), district, districtFile: resolve(o.district),
        brokers: String(o.brokers).split(',').map((s) => s.trim()).filter(Boolean),
        brokerAdmin: String(o.brokerAdmin).split(',').map((s) => s.trim()).filter(Boolean), brokerHttp: { host: '0.0.0.0', port: 9883 },
        redis: { url: o.redisUrl, keyPrefix: o.keyPrefix }, brokerListen: { host: '0.0.0.0', port: 1883 },
        database: o.databaseUrl, clouds: o.clouds, cloudHttp: { host: '0.0.0.0', port: 8080 }, photosDir: o.photosDir,
        buses: Object.fromEntries(district.buses.map((b) => [b.id, { host: b.host, port: b.port }])),
      }, secrets);
      console.log(`cluster init: configs in ${dir} (gateway.yaml, cloud-N.yaml, edge-GATEWAY.yaml), ${Object.keys(secrets.mqtt).length} MQTT credentials in ${resolve(o.credentialsDir, 'credentials.json')}`);
    });
}
