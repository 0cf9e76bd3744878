/**
 * Several brokers of one cluster (shared Redis, README "Several brokers for one city"): an MQTT client
 * given `url` and `urls` connects to the next of them at each (re)connection (mqtt.js `servers`), so the
 * clients of a broker that died move to another. Used by the edge and by the cloud's subscriber.
 */
export const BROKER_URL_PATTERN = '^(mqtts?|tcp|ssl)://[^/]+';

/** mqtt.js `servers` entries of broker URLs (`mqtt://host:port`, `mqtts://...`). */
export function brokerServers(urls: string[]): { host: string; port: number; protocol: 'mqtt' | 'mqtts' }[] {
  return urls.map((url) => {
    const u = new URL(url);
    const protocol = u.protocol === 'mqtts:' || u.protocol === 'ssl:' ? 'mqtts' : 'mqtt';
    return { host: u.hostname, port: u.port ? Number(u.port) : protocol === 'mqtts' ? 8883 : 1883, protocol };
  });
}

/** The `servers` option for `url` and further `urls`, or nothing for one broker. */
export function failoverOption(url: string, urls: string[] | undefined): { servers?: ReturnType<typeof brokerServers> } {
  return urls?.length ? { servers: brokerServers([url, ...urls]) } : {};
}
