import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CsError } from '../lib/errors.ts';

/** How the command line reaches a running cloud: its URL and a bearer token. */
export interface ApiTarget { url: string; token: string }

/**
 * `--url` (default http://127.0.0.1:8080) and `--token`, else CS_TOKEN, else the demo's token for
 * `role` from DATA_DIR/demo-tokens.json (and the demo's URL from DATA_DIR/demo.json).
 */
export function resolveTarget(o: { url?: string; token?: string; dataDir: string }, role: string): ApiTarget {
  const demoFile = join(o.dataDir, 'demo.json');
  const demo = existsSync(demoFile) ? JSON.parse(readFileSync(demoFile, 'utf8')) as { http?: string } : {};
  const tokensFile = join(o.dataDir, 'demo-tokens.json');
  const tokens = existsSync(tokensFile) ? JSON.parse(readFileSync(tokensFile, 'utf8')) as Record<string, string> : {};
  const token = o.token ?? process.env.CS_TOKEN ?? tokens[role];
  if (!token) throw new CsError('CS_CLI_USAGE', `no API token: give --token, set CS_TOKEN, or run the demo with --data-dir ${o.dataDir}`);
  return { url: (o.url ?? demo.http ?? 'http://127.0.0.1:8080').replace(/\/$/, ''), token };
}

export async function callApi(t: ApiTarget, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.token}`, ...(body === undefined ? {} : { 'content-type': contentType }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  } catch (err) {
    throw new CsError('CS_CLI_UNREACHABLE', `cannot reach the cloud at ${t.url}: ${(err as Error).message}`);
  }
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new CsError((json as { code?: string })?.code ?? 'CS_CLI_API', `${method} ${path}: ${res.status} ${(json as { message?: string })?.message ?? text}`);
  return json;
}
