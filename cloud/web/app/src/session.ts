import { reactive } from 'vue';
import { api, ApiError } from './api';

/** Who is signed in (GET /api/session), shared by every page. */
export interface User {
  username: string;
  role: 'admin' | 'operator' | 'commander' | 'verifier' | 'crew' | 'inspector' | 'integrator';
  unit: string | null;
}

export const session = reactive<{ user: User | null; checked: boolean }>({ user: null, checked: false });

/** Asks the server once per page load (the cookie is HttpOnly: the page cannot read it). */
export async function loadSession(): Promise<User | null> {
  try {
    const r = await api<{ user: User }>('/api/session', { quiet401: true });
    session.user = r.user;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    session.user = null;
  }
  session.checked = true;
  return session.user;
}

export async function signIn(username: string, password: string): Promise<User> {
  const r = await api<{ user: User }>('/api/session', { method: 'POST', body: { username, password }, quiet401: true });
  session.user = r.user;
  session.checked = true;
  return r.user;
}

export async function signOut(): Promise<void> {
  try { await api('/api/session', { method: 'DELETE', quiet401: true }); } finally { session.user = null; }
}

/** Where each role starts (docs/README: work surfaces). */
export function homeOf(user: User | null): string {
  switch (user?.role) {
    case 'crew': return '/crew';
    case 'inspector': return '/inspect';
    case 'verifier': return '/verify';
    case 'operator': return '/operator';
    case 'commander':
    case 'admin': return '/command';
    default: return '/signin';
  }
}
