'use strict';
/**
 * What the nodes share: an MQTT 3.1.1 connection to the CitySteward broker (Aedes speaks no MQTT 5)
 * and calls to the cloud's REST API with the API token. Used through a citysteward-server node.
 */
const crypto = require('node:crypto');
const mqtt = require('mqtt');

const ROOT = 'cs/v1';
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The MQTT topic of a cloud event type: 'case.transition' -> 'cs/v1/events/case/transition'. */
function eventTopic(type) {
  const [kind, action] = String(type).split('.');
  return `${ROOT}/events/${kind}/${action}`;
}

/** Comma or space separated list from a node property ('' -> []). */
function list(value) {
  if (Array.isArray(value)) return value.map(String).filter(Boolean);
  return String(value || '').split(/[\s,]+/).filter(Boolean);
}

/** Connects with the server node's broker URL and MQTT credentials; reconnects by itself unless told not to. */
function connect(server, label, opts = {}) {
  const creds = server.mqttCredentials();
  if (!server.brokerUrl()) throw new Error('no broker URL on the citysteward-server node');
  return mqtt.connect(server.brokerUrl(), {
    protocolVersion: 4,
    clean: true,
    clientId: `cs-nodered-${label}-${crypto.randomBytes(4).toString('hex')}`,
    connectTimeout: 10_000,
    reconnectPeriod: 2_000,
    ...(creds.username ? { username: creds.username, password: creds.password } : {}),
    ...opts,
  });
}

/** Shows the connection on the node's status and logs errors once per kind. */
function track(node, client) {
  let lastError;
  node.status({ fill: 'yellow', shape: 'ring', text: 'node-red:common.status.connecting' });
  client.on('connect', () => {
    lastError = undefined;
    node.status({ fill: 'green', shape: 'dot', text: 'node-red:common.status.connected' });
  });
  client.on('close', () => node.status({ fill: 'red', shape: 'ring', text: 'node-red:common.status.disconnected' }));
  client.on('error', (err) => {
    if (err.message !== lastError) node.warn(`MQTT: ${err.message}`);
    lastError = err.message;
  });
}

/** Subscribes at QoS 1 and reports a refusal (SUBACK 0x80: the identity may not read that topic). */
function subscribe(node, client, filters) {
  const subs = Object.fromEntries(filters.map((f) => [f, { qos: 1 }]));
  client.on('connect', () => {
    client.subscribe(subs, (err, granted) => {
      // mqtt.js reports SUBACK 0x80 as an error carrying the packet, older versions as granted qos 128.
      if (err && !err.packet) return node.error(`MQTT subscribe failed: ${err.message}`);
      const refused = err ? filters : (granted || []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length) {
        node.error(`MQTT subscription refused by the broker: ${refused.join(', ')}`);
        node.status({ fill: 'red', shape: 'ring', text: 'refused' });
      }
    });
  });
}

/** Parses a JSON payload, or undefined (after a warning) when it is not JSON. */
function json(node, topic, payload) {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    node.warn(`not JSON on ${topic}`);
    return undefined;
  }
}

/** Calls the cloud's REST API; resolves { statusCode, body } whatever the status, rejects on no answer. */
async function api(server, method, path, body) {
  const base = server.cloudUrl();
  if (!base) throw new Error('no cloud URL on the citysteward-server node');
  const token = server.apiToken();
  const res = await fetch(new URL(path, base.endsWith('/') ? base : `${base}/`), {
    method,
    headers: {
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON: kept as text */ }
  return { statusCode: res.status, body: parsed };
}

module.exports = { ROOT, ID_RE, eventTopic, list, connect, track, subscribe, json, api };
