/**
 * The edge's optional local HTTP port (config `http`): GET /metrics (Prometheus text) and GET /healthz
 * (200 `{ ok: true }`, or 503 with the reasons). Plain node:http with the shared timeouts and
 * connection caps (lib/http-limits.ts); nothing else is served (404), nothing but GET and HEAD (405).
 */
import { createServer, type Server } from 'node:http';
import { defaultHttpLimits, guardConnections } from '../lib/http-limits.ts';
import type { Logger } from '../lib/log.ts';
import type { EdgeMetrics } from './metrics.ts';

export interface EdgeHttpServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startEdgeHttp(o: { host: string; port: number; metrics: EdgeMetrics; logger: Logger }): Promise<EdgeHttpServer> {
  const limits = { ...defaultHttpLimits(), maxConnections: 64, maxConnectionsPerAddress: 16 };
  const server: Server = createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const json = (status: number, body: object) => send(status, 'application/json; charset=utf-8', JSON.stringify(body));
    if (path !== '/metrics' && path !== '/healthz') return json(404, { error: 'not found', paths: ['/metrics', '/healthz'] });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return json(405, { error: `method ${req.method} not allowed` });
    }
    if (path === '/healthz') {
      const r = o.metrics.ready();
      return json(r.ok ? 200 : 503, r);
    }
    o.metrics.scrape().then(
      (m) => send(200, m.contentType, m.body),
      (err: Error) => {
        o.logger.warn({ err: err.message }, 'metrics scrape failed');
        json(500, { error: 'metrics scrape failed' });
      },
    );
  });
  server.setTimeout(limits.idleTimeoutMs);
  guardConnections(server, limits, o.logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as { port: number }).port;
  o.logger.info({ host: o.host, port }, 'edge http listening (/metrics, /healthz)');
  return {
    address: { host: o.host, port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
