'use strict';
/**
 * citysteward-events: the cloud's case and alarm events (`cs/v1/events/{case|alarm|emergency}/{action}`,
 * QoS 1). msg.topic is the event type ('case.transition'), msg.payload the event object.
 */
const { eventTopic, list, connect, track, subscribe, json } = require('./lib/client.js');

module.exports = function (RED) {
  function CityStewardEvents(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const server = RED.nodes.getNode(config.server);
    if (!server) return void node.error('no citysteward-server node configured');
    const types = list(config.types);
    const units = new Set(list(config.units));
    let client;
    try {
      client = connect(server, 'events');
    } catch (err) {
      return void node.error(err.message);
    }
    track(node, client);
    subscribe(node, client, types.length ? types.map(eventTopic) : ['cs/v1/events/#']);
    client.on('message', (topic, payload) => {
      const event = json(node, topic, payload);
      if (!event || typeof event.type !== 'string') return;
      if (types.length && !types.includes(event.type)) return;
      if (units.size && !units.has(event.unit)) return;
      node.send({ topic: event.type, payload: event });
    });
    node.on('close', (done) => client.end(true, {}, () => done()));
  }
  RED.nodes.registerType('citysteward-events', CityStewardEvents);
};
