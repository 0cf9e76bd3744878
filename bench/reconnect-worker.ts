/**
 * Child process of the reconnect bench: opens one raw TCP connection per account, all at once,
 * sends an MQTT 3.1.1 CONNECT on each and waits for the CONNACKs (at most WINDOW attempts in flight). Parent protocol (IPC):
 *   <- { type: 'start', port, accounts }   -> { type: 'ready' }
 *   <- { type: 'go' }                      -> { type: 'done', connected, failed, firstError, lastAt }
 *   <- { type: 'stop' }                    closes every socket and exits
 * Raw sockets rather than mqtt.js: 5,000 clients in one process cost the client little, so the
 * time measured is the broker's.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { Account } from './identities.ts';

let port = 0;
let accounts: Account[] = [];
const sockets: Socket[] = [];

function go(): void {
  let connected = 0;
  let failed = 0;
  let settled = 0;
  let firstError = '';
  let lastAt = 0;
  const settle = (ok: boolean, why = ''): void => {
    if (ok) connected++;
    else {
      failed++;
      firstError ||= why;
    }
    lastAt = Date.now();
    if (++settled === accounts.length) process.send!({ type: 'done', connected, failed, firstError, lastAt });
  };
  // At most WINDOW attempts in flight per process (TCP handshake to CONNACK): all 10,000 at once would
  // measure the kernel's SYN queue and its 1 s, 3 s, 7 s... retransmissions, not the broker.
  let next = 0;
  const open = (): void => {
    if (next < accounts.length) attempt(accounts[next++]);
  };
  const attempt = (a: Account): void => {
    const packet = mqttPacket.generate({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: a.username, keepalive: 60,
      username: a.username, password: Buffer.from(a.password),
    });
    const s = connect({ port, host: '127.0.0.1', noDelay: true });
    sockets.push(s);
    let done = false;
    let got = Buffer.alloc(0);
    s.on('connect', () => s.write(packet));
    s.on('data', (d: Buffer) => {
      if (done) return;
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      done = true;
      settle(got[0] === 0x20 && got[3] === 0, `CONNACK ${got[3]}`);
      open();
    });
    s.on('error', (err) => { if (!done) { done = true; settle(false, err.message); open(); } });
    s.on('close', () => { if (!done) { done = true; settle(false, 'closed before CONNACK'); open(); } });
  };
  for (let i = 0; i < WINDOW; i++) open();
}

const WINDOW = 1000;

process.on('message', (m: { type: string; port?: number; accounts?: Account[] }) => {
  if (m.type === 'start') {
    port = m.port!;
    accounts = m.accounts!;
    process.send!({ type: 'ready' });
  } else if (m.type === 'go') go();
  else if (m.type === 'stop') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
