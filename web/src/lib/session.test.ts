import { describe, expect, it, vi } from 'vitest';
import { Api } from './api';
import { SessionEndedError } from './errors';
import { Session, STORAGE_KEY, type KeyValueStorage, type LockFn } from './session';

function memoryStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

function jwt(expSeconds: number): string {
  const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, '');
  return `${b64({ alg: 'HS256' })}.${b64({ sub: '1', exp: expSeconds })}.sig`;
}

const user = { id: 1, username: 'alice', is_admin: false, created_at: '2026-01-01T00:00:00.000Z' };
const NOW = 1_800_000_000_000;
const fresh = (n: number) => jwt(NOW / 1000 + 600 + n);
const expired = jwt(NOW / 1000 - 10);

function json(status: number, body: unknown): Response {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

/** A fake server: refresh tokens are single use, like the real one. */
function fakeServer() {
  let generation = 0;
  const valid = new Set(['r0']);
  const refreshCalls: string[] = [];
  const fetchFn = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const path = String(url);
    if (path === '/auth/token/refresh/') {
      const { refresh } = JSON.parse(String(init?.body)) as { refresh: string };
      refreshCalls.push(refresh);
      await new Promise((r) => setTimeout(r, 5));
      if (!valid.delete(refresh)) return json(401, { error: { code: 'token_revoked', message: 'revoked' } });
      generation += 1;
      valid.add(`r${generation}`);
      return json(200, { access: fresh(generation), refresh: `r${generation}` });
    }
    const auth = new Headers(init?.headers).get('Authorization') ?? '';
    if (auth === `Bearer ${expired}` || auth === 'Bearer bad') return json(401, { error: { code: 'token_expired', message: 'expired' } });
    return json(200, { ok: path });
  });
  return { fetchFn, refreshCalls };
}

function setup(access: string, lock?: LockFn) {
  const storage = memoryStorage();
  storage.setItem(STORAGE_KEY, JSON.stringify({ access, refresh: 'r0', user }));
  const server = fakeServer();
  const session = new Session({ storage, fetch: server.fetchFn as unknown as typeof fetch, now: () => NOW, lock });
  const api = new Api(session, server.fetchFn as unknown as typeof fetch);
  return { storage, server, session, api };
}

describe('Session', () => {
  it('uses a fresh token without refreshing', async () => {
    const { session, server } = setup(fresh(0));
    expect(await session.accessToken()).toBe(fresh(0));
    expect(server.refreshCalls).toEqual([]);
  });

  it('refreshes an expiring token before use', async () => {
    const { session, server, storage } = setup(expired);
    expect(await session.accessToken()).toBe(fresh(1));
    expect(server.refreshCalls).toEqual(['r0']);
    expect(JSON.parse(storage.getItem(STORAGE_KEY)!).refresh).toBe('r1');
  });

  it('serialises concurrent refreshes into one request', async () => {
    const { api, server } = setup(expired);
    const results = await Promise.all([api.request('GET', '/a'), api.request('GET', '/b'), api.request('GET', '/c')]);
    expect(results).toHaveLength(3);
    expect(server.refreshCalls).toEqual(['r0']);
  });

  it('adopts tokens another tab already rotated instead of reusing the old refresh token', async () => {
    const { session, storage, server } = setup(expired);
    // Another tab rotated while this one waited for the lock.
    const otherTab: LockFn = async (_name, fn) => {
      storage.setItem(STORAGE_KEY, JSON.stringify({ access: fresh(9), refresh: 'r9', user }));
      return fn();
    };
    const s2 = new Session({ storage, fetch: server.fetchFn as unknown as typeof fetch, now: () => NOW, lock: otherTab });
    expect(await s2.refresh(expired)).toBe(fresh(9));
    expect(server.refreshCalls).toEqual([]);
    expect(session.auth?.refresh).toBe('r9');
  });

  it('ends the session when the refresh token is rejected', async () => {
    const { session, storage, server } = setup(expired);
    storage.setItem(STORAGE_KEY, JSON.stringify({ access: expired, refresh: 'used', user }));
    const seen: unknown[] = [];
    session.subscribe((a) => seen.push(a));
    await expect(session.accessToken()).rejects.toBeInstanceOf(SessionEndedError);
    expect(storage.getItem(STORAGE_KEY)).toBeNull();
    expect(seen).toEqual([null]);
    expect(server.refreshCalls).toEqual(['used']);
  });

  it('subscribe works unbound (as useSyncExternalStore calls it)', () => {
    const { session } = setup(fresh(0));
    const { subscribe } = session;
    const seen: unknown[] = [];
    const off = subscribe((a) => seen.push(a));
    session.clear();
    off();
    expect(seen).toEqual([null]);
  });

  it('keeps the session when the server cannot be reached', async () => {
    const storage = memoryStorage();
    storage.setItem(STORAGE_KEY, JSON.stringify({ access: expired, refresh: 'r0', user }));
    const failing = vi.fn(async () => {
      throw new TypeError('network');
    });
    const session = new Session({ storage, fetch: failing as unknown as typeof fetch, now: () => NOW });
    await expect(session.accessToken()).rejects.toBeInstanceOf(TypeError);
    expect(session.auth).not.toBeNull();
  });
});

describe('Api', () => {
  it('a 401 refreshes once and retries', async () => {
    const { api, session, server } = setup('bad');
    await expect(api.request('GET', '/chat/rooms/')).resolves.toEqual({ ok: '/chat/rooms/' });
    expect(server.refreshCalls).toEqual(['r0']);
    expect(session.auth?.access).toBe(fresh(1));
  });

  it('a second 401 logs out', async () => {
    const storage = memoryStorage();
    storage.setItem(STORAGE_KEY, JSON.stringify({ access: fresh(0), refresh: 'r0', user }));
    const fetchFn = vi.fn(async (url: string | URL | Request) =>
      String(url) === '/auth/token/refresh/'
        ? json(200, { access: fresh(1), refresh: 'r1' })
        : json(401, { error: { code: 'unauthenticated', message: 'no' } }),
    );
    const session = new Session({ storage, fetch: fetchFn as unknown as typeof fetch, now: () => NOW });
    const api = new Api(session, fetchFn as unknown as typeof fetch);
    await expect(api.request('GET', '/auth/me/')).rejects.toBeInstanceOf(SessionEndedError);
    expect(session.auth).toBeNull();
    expect(fetchFn).toHaveBeenCalledTimes(3);
  });

  it('turns error bodies into ApiError with fields', async () => {
    const storage = memoryStorage();
    const fetchFn = vi.fn(async () =>
      json(400, { error: { code: 'validation_failed', message: 'Invalid', fields: { username: 'taken' } } }),
    );
    const api = new Api(new Session({ storage, fetch: fetchFn as unknown as typeof fetch }), fetchFn as unknown as typeof fetch);
    await expect(api.register('al', 'a@b.c', 'x')).rejects.toMatchObject({
      status: 400,
      code: 'validation_failed',
      fields: { username: 'taken' },
    });
  });
});
