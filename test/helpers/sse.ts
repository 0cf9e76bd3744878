import { request, type IncomingMessage } from 'node:http';

export interface Sse { events: { id: string; event: string; data: Record<string, unknown> }[]; res: IncomingMessage; close(): void }

/** A live event stream (`GET /api/events`) read into `events`. */
export function openStream(base: string, token: string): Promise<Sse> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/api/events`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      const out: Sse = { events: [], res, close: () => req.destroy() };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (id && event && data) out.events.push({ id, event, data: JSON.parse(data) });
        }
      });
      resolve(out);
    });
    req.on('error', reject);
    req.end();
  });
}
