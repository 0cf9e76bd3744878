'use strict';
/**
 * citysteward-case: registers, reads, comments on or acts on a case through the cloud's REST API.
 * msg.payload = { op: 'register' | 'get' | 'note' | 'action' | 'outcome', caseId?, action?, body }; op, caseId and action
 * may also come from the node's settings. Out: msg.payload = the cloud's answer (the case),
 * msg.statusCode. op 'outcome' reports notification outcomes (POST /api/notifications/outcomes). A refusal (4xx/5xx) goes to node.error with msg.payload = the cloud's error body.
 */
const { api } = require('./lib/client.js');

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const ACTION_RE = /^[a-z][a-z-]{1,31}$/;

module.exports = function (RED) {
  function CityStewardCase(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const server = RED.nodes.getNode(config.server);
    node.on('input', async (msg, send, done) => {
      const p = msg.payload && typeof msg.payload === 'object' ? msg.payload : {};
      const op = p.op || config.op || 'register';
      const caseId = p.caseId || config.caseId;
      const action = op === 'note' ? 'note' : p.action || config.action;
      let path;
      let method = 'POST';
      if (op === 'register') path = 'api/cases';
      else if (op === 'outcome') path = 'api/notifications/outcomes';
      else if (op === 'get') {
        if (!ID_RE.test(String(caseId || ''))) return done(new Error('op get needs caseId'));
        path = `api/cases/${encodeURIComponent(caseId)}?limit=1`;
        method = 'GET';
      } else if (op === 'note' || op === 'action') {
        if (!ID_RE.test(String(caseId || ''))) return done(new Error(`op ${op} needs caseId`));
        if (!ACTION_RE.test(String(action || ''))) return done(new Error('op action needs action (dispatch, note, on-site...)'));
        path = `api/cases/${encodeURIComponent(caseId)}/${action}`;
      } else return done(new Error(`unknown op "${op}" (register, get, note, action, outcome)`));
      if (!server) return done(new Error('no citysteward-server node configured'));
      node.status({ fill: 'blue', shape: 'dot', text: op });
      try {
        const r = await api(server, method, path, method === 'GET' ? undefined : p.body ?? {});
        msg.statusCode = r.statusCode;
        msg.payload = r.body;
        if (r.statusCode >= 200 && r.statusCode < 300) {
          node.status({ fill: 'green', shape: 'dot', text: `${op} ${r.statusCode}` });
          send(msg);
          return done();
        }
        node.status({ fill: 'red', shape: 'ring', text: `${op} ${r.statusCode}` });
        const why = r.body && typeof r.body === 'object' ? `${r.body.code || ''} ${r.body.message || ''}`.trim() : String(r.body);
        done(new Error(`${method} /${path} answered ${r.statusCode}: ${why}`));
      } catch (err) {
        node.status({ fill: 'red', shape: 'ring', text: 'unreachable' });
        msg.statusCode = 0;
        done(err);
      }
    });
  }
  RED.nodes.registerType('citysteward-case', CityStewardCase);
};
