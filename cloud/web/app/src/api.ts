/**
 * The page's one way to the API: same-origin fetch with the session cookie (docs/architecture.md#sessions),
 * JSON in and out, and the cloud's error body ({ code, message }) turned into an ApiError the pages
 * can show. A 401 anywhere means the session ended: the app goes back to sign-in.
 */

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
  }
  /** The request never reached the server (offline, server down). */
  get offline(): boolean { return this.status === 0; }
}

type Unauthorised = () => void;
let onUnauthorised: Unauthorised = () => {};
/** What to do when a call answers 401 (the router sends the user to sign-in). */
export function setUnauthorisedHandler(fn: Unauthorised): void { onUnauthorised = fn; }

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Query parameters; undefined and empty values are left out. */
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
  /** Don't treat a 401 as a lost session (the sign-in call itself). */
  quiet401?: boolean;
}

export function withQuery(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  const init: RequestInit = { method: opts.method ?? 'GET', credentials: 'same-origin', signal: opts.signal, headers: { accept: 'application/json' } };
  if (opts.body instanceof FormData) init.body = opts.body;
  else if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), init);
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'OFFLINE', (err as Error).message);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: any = undefined;
  try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON: reported below */ }
  if (!res.ok) {
    if (res.status === 401 && !opts.quiet401) onUnauthorised();
    const retry = Number(res.headers.get('retry-after'));
    throw new ApiError(res.status, body?.code ?? `HTTP_${res.status}`, body?.message ?? (text || res.statusText), Number.isFinite(retry) ? retry : undefined);
  }
  return body as T;
}

export const get = <T>(path: string, query?: RequestOptions['query'], signal?: AbortSignal) => api<T>(path, { query, signal });
export const post = <T>(path: string, body?: unknown) => api<T>(path, { method: 'POST', body: body ?? {} });
