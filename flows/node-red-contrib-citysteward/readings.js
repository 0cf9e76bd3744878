'use strict';
/**
 * citysteward-readings: readings as they arrive at the broker (`cs/v1/{gateway}/up/{device}`, QoS 1),
 * optionally only some devices or the devices of some kinds (looked up in the cloud's device list,
 * `GET /api/devices?kind=`, and again every `refresh` minutes). msg.topic is the device id,
 * msg.gateway the gateway, msg.payload the reading ({ seq, ts, device, values, quality, ... }).
 */
const { ID_RE, list, connect, track, subscribe, json, api } = require('./lib/client.js');

const REFRESH_MS = 5 * 60_000;

module.exports = function (RED) {
  function CityStewardReadings(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const server = RED.nodes.getNode(config.server);
    if (!server) return void node.error('no citysteward-server node configured');
    const devices = list(config.devices);
    const bad = devices.filter((d) => !ID_RE.test(d));
    if (bad.length) return void node.error(`not device ids: ${bad.join(', ')}`);
    const kinds = list(config.kinds);
    /** Devices of the chosen kinds; undefined until the first lookup answered (nothing passes before). */
    let ofKinds = kinds.length ? undefined : null;
    let timer;
    async function lookUp() {
      try {
        const found = new Set();
        for (const kind of kinds) {
          const r = await api(server, 'GET', `api/devices?kind=${encodeURIComponent(kind)}`);
          if (r.statusCode !== 200) throw new Error(`GET /api/devices answered ${r.statusCode}`);
          for (const d of r.body.items) found.add(d.id);
        }
        ofKinds = found;
      } catch (err) {
        node.warn(`device lookup by kind failed: ${err.message}`);
      }
    }
    if (kinds.length) {
      lookUp();
      timer = setInterval(lookUp, REFRESH_MS);
    }
    let client;
    try {
      client = connect(server, 'readings');
    } catch (err) {
      return void node.error(err.message);
    }
    track(node, client);
    subscribe(node, client, devices.length ? devices.map((d) => `cs/v1/+/up/${d}`) : ['cs/v1/+/up/+']);
    client.on('message', (topic, payload) => {
      const [, , gateway, , device] = topic.split('/');
      if (ofKinds !== null && !ofKinds?.has(device)) return;
      const reading = json(node, topic, payload);
      if (!reading) return;
      node.send({ topic: device, gateway, payload: reading });
    });
    node.on('close', (done) => {
      clearInterval(timer);
      client.end(true, {}, () => done());
    });
  }
  RED.nodes.registerType('citysteward-readings', CityStewardReadings);
};
