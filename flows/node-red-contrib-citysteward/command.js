'use strict';
/**
 * citysteward-command: sends an edge command on `cs/v1/{gateway}/cmd` (QoS 1) and outputs its
 * acknowledgement from `cs/v1/{gateway}/cmd/ack` ({ id, outcome: ok | rejected | failed, message?, ts }),
 * or errors after the timeout. msg.payload = the command ({ type: 'report-now' } ...; an id is added
 * when missing), msg.gateway (or the node's gateway) = the gateway. Needs an MQTT identity allowed to
 * send commands (role service): the integrator identity `citysteward flows` provisions is read-only.
 * One short connection per command, so that a refused publish (the broker closes the connection)
 * affects nothing else.
 */
const crypto = require('node:crypto');
const { ID_RE, connect } = require('./lib/client.js');

const REFUSED = 'the broker refused the subscription to command acknowledgements (this MQTT identity may not send commands)';

module.exports = function (RED) {
  function CityStewardCommand(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const server = RED.nodes.getNode(config.server);
    const timeoutMs = Math.max(1, Number(config.timeout) || 10) * 1000;
    const pending = new Set();
    node.on('input', (msg, send, done) => {
      const gateway = String(msg.gateway || config.gateway || '');
      if (!ID_RE.test(gateway) || gateway === 'events') return done(new Error(`not a gateway id: "${gateway}"`));
      const cmd = msg.payload && typeof msg.payload === 'object' ? { ...msg.payload } : { type: String(msg.payload || '') };
      if (!cmd.type) return done(new Error('msg.payload needs a command type (set-mode, write-point, report-now)'));
      cmd.id ??= `nr-${crypto.randomBytes(6).toString('hex')}`;
      if (!server) return done(new Error('no citysteward-server node configured'));
      let client;
      try {
        client = connect(server, 'command', { reconnectPeriod: 0 });
      } catch (err) {
        return done(err);
      }
      pending.add(client);
      node.status({ fill: 'blue', shape: 'dot', text: `${cmd.type} → ${gateway}` });
      let finished = false;
      const finish = (err, ack) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        pending.delete(client);
        client.end(true);
        if (err) {
          node.status({ fill: 'red', shape: 'ring', text: err.message.slice(0, 40) });
          return done(err);
        }
        node.status({ fill: ack.outcome === 'ok' ? 'green' : 'yellow', shape: 'dot', text: `${cmd.type}: ${ack.outcome}` });
        msg.payload = ack;
        msg.command = cmd;
        send(msg);
        done();
      };
      const timer = setTimeout(() => finish(new Error(`no acknowledgement of ${cmd.id} from ${gateway} within ${timeoutMs / 1000} s`)), timeoutMs);
      client.on('error', (err) => finish(err));
      client.on('close', () => finish(new Error('the broker closed the connection (is this identity allowed to send commands?)')));
      client.on('message', (topic, payload) => {
        let ack;
        try { ack = JSON.parse(payload.toString('utf8')); } catch { return; }
        if (ack && ack.id === cmd.id) finish(undefined, ack);
      });
      client.once('connect', () => {
        client.subscribe(`cs/v1/${gateway}/cmd/ack`, { qos: 1 }, (err, granted) => {
          // mqtt.js reports SUBACK 0x80 as an error, older versions as granted qos 128.
          if (err?.packet || granted?.[0]?.qos === 128) return finish(new Error(REFUSED));
          if (err) return finish(err);
          client.publish(`cs/v1/${gateway}/cmd`, JSON.stringify(cmd), { qos: 1 }, (e) => { if (e) finish(e); });
        });
      });
    });
    node.on('close', () => {
      for (const c of pending) c.end(true);
      pending.clear();
    });
  }
  RED.nodes.registerType('citysteward-command', CityStewardCommand);
};
