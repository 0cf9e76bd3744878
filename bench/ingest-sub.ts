/**
 * The ingest bench's peer subscribers on Mosquitto (bench/ingest-bench.ts), each a process of its own:
 * `count` only counts; `sqlite` inserts into SQLite (better-sqlite3, WAL, one transaction per batch of up
 * to 500, statement prepared once); `pg` does the same into PostgreSQL (multi-row insert). All ack on
 * receipt (mqtt.js default), as a simple subscriber does. Parent protocol (IPC):
 *   <- { type: 'start', url, mode, target }   target: SQLite file or PostgreSQL URL
 *   -> { type: 'ready' }
 *   <- { type: 'count' }  -> { type: 'count', n }   readings counted or stored so far
 */
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import pg from 'pg';
import { ALL_UP, SERVICE, account } from './identities.ts';

interface Row { gw: string; device: string; seq: number; ts: string; values: string }
type Sink = (rows: Row[]) => Promise<void> | void;

const DDL = 'create table if not exists readings (gateway text not null, device text not null, seq bigint not null, ts text not null, values_json text not null, primary key (gateway, device, seq))';

async function openSink(mode: string, target: string): Promise<Sink> {
  if (mode === 'sqlite') {
    const db = new Database(target);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(DDL);
    const insert = db.prepare('insert or ignore into readings values (?, ?, ?, ?, ?)');
    const tx = db.transaction((rows: Row[]) => { for (const r of rows) insert.run(r.gw, r.device, r.seq, r.ts, r.values); });
    return (rows) => tx(rows);
  }
  const client = new pg.Client({ connectionString: target });
  await client.connect();
  await client.query(DDL);
  return async (rows) => {
    const params = rows.flatMap((r) => [r.gw, r.device, r.seq, r.ts, r.values]);
    const tuples = rows.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`);
    await client.query(`insert into readings values ${tuples.join(', ')} on conflict do nothing`, params);
  };
}

let n = 0;
async function start(url: string, mode: string, target: string): Promise<void> {
  const sink = mode === 'count' ? undefined : await openSink(mode, target);
  let queue: Row[] = [];
  let busy = false;
  const flush = async (): Promise<void> => {
    if (busy || queue.length === 0) return;
    busy = true;
    while (queue.length) {
      const rows = queue.slice(0, 500);
      queue = queue.slice(rows.length);
      await sink!(rows);
      n += rows.length;
    }
    busy = false;
  };
  const { username, password } = account(SERVICE);
  const c = mqtt.connect(url, { protocolVersion: 4, clientId: `${SERVICE}-${mode}`, clean: false, username, password, reconnectPeriod: 1000 });
  c.on('message', (topic, payload) => {
    if (!sink) { n++; return; }
    const r = JSON.parse(payload.toString()) as { seq: number; ts: string; device: string; values: unknown };
    queue.push({ gw: topic.split('/')[2]!, device: r.device, seq: r.seq, ts: r.ts, values: JSON.stringify(r.values) });
    if (queue.length >= 500) void flush();
    else setImmediate(() => void flush());
  });
  await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
  await c.subscribeAsync(ALL_UP, { qos: 1 });
  process.send!({ type: 'ready' });
}

process.on('message', (m: { type: string; url: string; mode: string; target: string }) => {
  if (m.type === 'start') start(m.url, m.mode, m.target).catch((err: Error) => process.send!({ type: 'error', message: err.message }));
  else if (m.type === 'count') process.send!({ type: 'count', n });
  else if (m.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
