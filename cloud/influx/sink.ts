/**
 * InfluxDB sink (README "InfluxDB sink", docs/architecture.md#ingest): every reading a batch
 * stored becomes one line-protocol point appended to the durable queue (cloud/influx/queue.ts)
 * after the commit; a sender drains the queue in order through the client's v2 WriteApi (gzip),
 * retrying with back-off, and moves the cursor only past what the server acknowledged.
 */
import { dirname, join } from 'node:path';
import { InfluxDB, setLogger, type WriteApi } from '@influxdata/influxdb-client';
import type { Logger } from '../../lib/log.ts';
import { CsError } from '../../lib/errors.ts';
import { CloudErrors } from '../errors.ts';
import { openPointQueue, type PointQueue } from './queue.ts';

export interface InfluxConfig {
  url: string;
  org: string;
  bucket: string;
  token: string;
  /** Queue directory; default `influx-queue/` beside the SQLite file (required with PostgreSQL). */
  queueDir?: string;
  /** Queue cap in bytes (default 256 MiB); over it the oldest points are dropped and counted. */
  maxQueueBytes?: number;
  /** Points per write request (default 5000). */
  batchPoints?: number;
  /** Back-off after a failed write: first and longest wait, ms (default 200 and 30000). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export const DEFAULT_MAX_QUEUE_BYTES = 256 * 1024 * 1024;

/** What the configuration lacks or gets wrong; the token's value never appears in a message. */
export function checkInflux(c: Partial<InfluxConfig>): string[] {
  const out: string[] = [];
  for (const k of ['url', 'org', 'bucket', 'token'] as const) if (typeof c[k] !== 'string' || !c[k]) out.push(`influx.${k} is required`);
  if (typeof c.url === 'string' && c.url && !/^https?:\/\/[^/]+/.test(c.url)) out.push('influx.url must be an http(s) URL');
  if (c.maxQueueBytes !== undefined && !(Number.isInteger(c.maxQueueBytes) && c.maxQueueBytes >= 64 * 1024)) out.push('influx.maxQueueBytes must be an integer of at least 65536');
  if (c.batchPoints !== undefined && !(Number.isInteger(c.batchPoints) && c.batchPoints >= 1)) out.push('influx.batchPoints must be a positive integer');
  return out;
}

/** One stored reading as the sink sees it. */
export interface SinkReading { device: string; gateway: string; kind?: string; ts: number; values: Record<string, unknown> }

const escKey = (s: string) => s.replace(/[,= \\]/g, (c) => `\\${c}`);
const escMeasurement = (s: string) => s.replace(/[, \\]/g, (c) => `\\${c}`);

/** Line protocol, ms precision: measurement = device kind (or "reading"), tags device and gateway, numeric fields only. */
export function toLine(r: SinkReading): string | undefined {
  const fields = Object.entries(r.values)
    .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
    .map(([k, v]) => `${escKey(k)}=${v}`);
  if (!fields.length) return undefined;
  return `${escMeasurement(r.kind || 'reading')},device=${escKey(r.device)},gateway=${escKey(r.gateway)} ${fields.join(',')} ${Math.round(r.ts)}`;
}

export interface InfluxSink {
  /** Queues the points of a committed batch (fsync'd before it returns). */
  stored(readings: SinkReading[]): void;
  start(): void;
  /** Stops the sender; what is unsent stays queued for the next start. */
  stop(): Promise<void>;
  stats(): { queued: number; queueBytes: number; dropped: number; sent: number; failures: number };
}

export function createInfluxSink(cfg: InfluxConfig, defaultDir: string | undefined, logger: Logger): InfluxSink {
  const dir = cfg.queueDir ?? (defaultDir ? join(defaultDir, 'influx-queue') : undefined);
  if (!dir) throw new Error('influx.queueDir is required when the database is not a SQLite file');
  const queue: PointQueue = openPointQueue(dir, cfg.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES);
  const batchPoints = cfg.batchPoints ?? 5000;
  const minMs = cfg.retryMinMs ?? 200;
  const maxMs = cfg.retryMaxMs ?? 30_000;
  // The client's own retry buffer is off: the queue is the retry buffer and the sender backs off.
  setLogger({ error: (m, e) => logger.debug({ err: e?.message }, m), warn: (m, e) => logger.debug({ err: e?.message }, m) });
  const writeApi: WriteApi = new InfluxDB({ url: cfg.url, token: cfg.token, timeout: 10_000 }).getWriteApi(cfg.org, cfg.bucket, 'ms', {
    batchSize: batchPoints + 1, flushInterval: 0, maxRetries: 0, maxBufferLines: batchPoints + 1, gzipThreshold: 1024,
  });
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let sleeping: NodeJS.Timeout | undefined;
  let sent = 0;
  let failures = 0;
  let lastDropped = 0;
  let idle = false;

  const pause = (ms: number) => new Promise<void>((r) => { wake = r; sleeping = setTimeout(r, ms); });

  async function run(): Promise<void> {
    let attempt = 0;
    while (running) {
      const batch = queue.peek(batchPoints);
      if (!batch.lines.length) { idle = true; await pause(1000); idle = false; continue; }
      try {
        writeApi.writeRecords(batch.lines);
        await writeApi.flush();
        queue.ack(batch.next, batch.lines.length);
        sent += batch.lines.length;
        if (attempt) logger.info({ failures: attempt, queued: queue.depth() }, 'InfluxDB writes resumed');
        attempt = 0;
      } catch (err) {
        failures++;
        attempt++;
        const wait = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 16)) * (0.75 + Math.random() * 0.5);
        if (attempt === 1 || attempt % 20 === 0) logger.warn({ err: (err as Error)?.message, attempt, queued: queue.depth(), retryMs: Math.round(wait) }, 'InfluxDB write failed; points stay queued');
        await pause(wait);
      }
    }
  }

  return {
    stored(readings) {
      const lines = readings.map(toLine).filter((l): l is string => l !== undefined);
      if (!lines.length) return;
      queue.append(lines);
      if (queue.dropped() !== lastDropped) {
        logger.warn({ dropped: queue.dropped() - lastDropped, maxQueueBytes: cfg.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES }, 'InfluxDB queue full: oldest points dropped');
        lastDropped = queue.dropped();
      }
      // A sender idle on an empty queue starts now.
      if (idle) { clearTimeout(sleeping); wake?.(); }
    },
    start() {
      if (running) return;
      running = true;
      loop = run();
      logger.info({ url: cfg.url, org: cfg.org, bucket: cfg.bucket, queueDir: dir, queued: queue.depth() }, 'InfluxDB sink started');
    },
    async stop() {
      running = false;
      if (sleeping) clearTimeout(sleeping);
      wake?.();
      await loop;
      await writeApi.close().catch(() => undefined);
      queue.close();
    },
    stats: () => ({ queued: queue.depth(), queueBytes: queue.bytes(), dropped: queue.dropped(), sent, failures }),
  };
}

/** The cloud's sink from its options (cloud/app.ts): none when `influx` is absent; a bad configuration is refused. */
export function buildInfluxSink(cfg: InfluxConfig | undefined, db: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string }, logger: Logger): InfluxSink | undefined {
  if (!cfg) return undefined;
  const problems = checkInflux(cfg);
  if (!cfg.queueDir && db.kind !== 'sqlite') problems.push('influx.queueDir is required with PostgreSQL');
  if (problems.length) throw new CsError(CloudErrors.CONFIG_INVALID, problems.join('; '));
  return createInfluxSink(cfg, db.kind === 'sqlite' ? dirname(db.file) : undefined, logger);
}
