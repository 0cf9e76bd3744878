import { createServer } from 'node:net';

/** True when `port` on `host` can be bound now (used to fall back from 1883 and 8080 in the demo). */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** `preferred` when free, otherwise 0 (any free port). */
export async function preferPort(preferred: number, host = '127.0.0.1'): Promise<number> {
  if (preferred === 0) return 0;
  return (await portIsFree(preferred, host)) ? preferred : 0;
}
