'use strict';
/**
 * citysteward-server (config node): where the cloud and the broker are and the credentials to use.
 * Empty fields fall back to the `citysteward` settings that `citysteward flows` provisions
 * (an integrator API token and a read-only MQTT identity), so shipped flows need no secrets.
 */
module.exports = function (RED) {
  function CityStewardServer(config) {
    RED.nodes.createNode(this, config);
    const provisioned = () => RED.settings.citysteward || {};
    const creds = () => this.credentials || {};
    this.cloudUrl = () => config.url || provisioned().url || '';
    this.brokerUrl = () => config.broker || provisioned().broker || '';
    this.apiToken = () => creds().token || provisioned().token || '';
    this.mqttCredentials = () => (creds().mqttUsername
      ? { username: creds().mqttUsername, password: creds().mqttPassword || '' }
      : { username: provisioned().mqttUsername || '', password: provisioned().mqttPassword || '' });
  }
  RED.nodes.registerType('citysteward-server', CityStewardServer, {
    credentials: {
      token: { type: 'password' },
      mqttUsername: { type: 'text' },
      mqttPassword: { type: 'password' },
    },
  });
};
