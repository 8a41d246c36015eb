// A small client for the PocketBase-compatible REST API. The session is kept
// in localStorage under the JS SDK's key and shape (`pocketbase_auth`:
// {token, record}), so the panel and SDK-based tools can share it.

export type ApiErrorData = Record<string, any>;

export class ApiError extends Error {
  status: number;
  data: ApiErrorData;
  constructor(status: number, message: string, data: ApiErrorData) {
    super(message);
    this.status = status;
    this.data = data || {};
  }
}

const AUTH_KEY = 'pocketbase_auth';
type Session = { token: string; record: any } | null;
type Listener = (s: Session) => void;

let session: Session = load();
const listeners = new Set<Listener>();

function load(): Session {
  try {
    const raw = localStorage.getItem(AUTH_KEY);
    const parsed = raw ? JSON.parse(raw) : null;
    return parsed && typeof parsed.token === 'string' && parsed.token ? parsed : null;
  } catch {
    return null;
  }
}

export const auth = {
  get session() {
    return session;
  },
  save(token: string, record: any) {
    session = { token, record };
    localStorage.setItem(AUTH_KEY, JSON.stringify(session));
    listeners.forEach((l) => l(session));
  },
  clear() {
    session = null;
    localStorage.removeItem(AUTH_KEY);
    listeners.forEach((l) => l(session));
  },
  subscribe(l: Listener) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

export async function api<T = any>(method: string, path: string, body?: any, query?: Record<string, any>): Promise<T> {
  return send<T>(method, path, body, query, true);
}

/**
 * A request made as a guest: no `Authorization` header, and a 401 leaves the
 * stored superuser session alone. For the public account pages, whose
 * visitor is a collection's user, not the panel's superuser.
 */
export async function guestApi<T = any>(method: string, path: string, body?: any): Promise<T> {
  return send<T>(method, path, body, undefined, false);
}

async function send<T>(method: string, path: string, body: any, query: Record<string, any> | undefined, withSession: boolean): Promise<T> {
  let url = path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
    const s = qs.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const headers: Record<string, string> = {};
  if (session && withSession) headers.Authorization = session.token;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, 'The server could not be reached.', {});
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    if (res.status === 401 && session && withSession && !path.includes('auth-with-password')) auth.clear();
    throw new ApiError(res.status, json?.message || `Request failed (${res.status}).`, json?.data || {});
  }
  return json as T;
}

export async function login(email: string, password: string) {
  const r = await api('POST', '/api/collections/_superusers/auth-with-password', { identity: email, password });
  auth.save(r.token, r.record);
  return r;
}

export async function refresh() {
  if (!session) return;
  const r = await api('POST', '/api/collections/_superusers/auth-refresh');
  auth.save(r.token, r.record);
}

/** The message of a field error at a dotted path (`fields.2.name`) of an error's data. */
export function fieldError(err: unknown, path: string): string | undefined {
  if (!(err instanceof ApiError)) return undefined;
  let cur: any = err.data;
  for (const part of path.split('.')) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = cur[part];
  }
  return cur && typeof cur.message === 'string' ? cur.message : undefined;
}

/** All leaf messages in an error's data, as `path: message` lines (for a summary). */
export function allFieldErrors(data: any, prefix = ''): string[] {
  if (!data || typeof data !== 'object') return [];
  if (typeof data.message === 'string' && typeof data.code === 'string') return [`${prefix}: ${data.message}`];
  return Object.entries(data).flatMap(([k, v]) => allFieldErrors(v, prefix ? `${prefix}.${k}` : k));
}

export const collectionsCache: { list: any[] } = { list: [] };

export async function loadCollections(): Promise<any[]> {
  const r = await api('GET', '/api/collections', undefined, { perPage: 500, sort: 'name' });
  collectionsCache.list = r.items;
  return r.items;
}
