/**
 * The login: tokens in localStorage and their silent renewal.
 *
 * Refresh tokens are single use and rotate; presenting a used one revokes the
 * whole login. So at most one refresh may be in flight per browser: within a
 * tab, callers share one promise; across tabs, a Web Lock serialises them and
 * the lock holder re-reads storage first, because another tab may already
 * have rotated the pair while this one waited.
 */
import { ApiError, SessionEndedError, errorFromResponse } from './errors';
import type { User } from './types';

export interface StoredAuth {
  access: string;
  refresh: string;
  user: User;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

export interface SessionDeps {
  storage: KeyValueStorage;
  fetch: typeof fetch;
  lock?: LockFn;
  now?: () => number;
}

export const STORAGE_KEY = 'banter.auth';
/** Renew an access token this long before it expires, so requests rarely meet a 401. */
const EARLY_REFRESH_MS = 30_000;

type Listener = (auth: StoredAuth | null) => void;

export class Session {
  private readonly deps: SessionDeps;
  private inflight: Promise<string> | null = null;
  private readonly listeners = new Set<Listener>();

  constructor(deps: SessionDeps) {
    this.deps = deps;
  }

  get auth(): StoredAuth | null {
    const raw = this.deps.storage.getItem(STORAGE_KEY);
    if (!raw) return null;
    try {
      const parsed = JSON.parse(raw) as StoredAuth;
      return parsed && typeof parsed.access === 'string' && typeof parsed.refresh === 'string' ? parsed : null;
    } catch {
      return null;
    }
  }

  save(auth: StoredAuth): void {
    this.deps.storage.setItem(STORAGE_KEY, JSON.stringify(auth));
    this.emit();
  }

  setUser(user: User): void {
    const auth = this.auth;
    if (auth) this.save({ ...auth, user });
  }

  clear(): void {
    this.deps.storage.removeItem(STORAGE_KEY);
    this.emit();
  }

  /** An arrow function so it can be handed to useSyncExternalStore unbound. */
  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Tell listeners that storage changed, e.g. from another tab's `storage` event. */
  emit(): void {
    const auth = this.auth;
    for (const l of this.listeners) l(auth);
  }

  /** A usable access token, renewed first if it is about to expire. */
  async accessToken(): Promise<string> {
    const auth = this.auth;
    if (!auth) throw new SessionEndedError();
    if (!this.expiresSoon(auth.access)) return auth.access;
    return this.refresh(auth.access);
  }

  /**
   * Renews the token pair. `stale` is the access token the caller found
   * wanting; if storage already holds a different, fresh one (another request
   * or tab renewed it meanwhile), that one is returned without a request.
   */
  refresh(stale?: string): Promise<string> {
    if (!this.inflight) {
      const lock = this.deps.lock ?? ((_name, fn) => fn());
      this.inflight = lock('banter-token-refresh', () => this.refreshLocked(stale)).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async refreshLocked(stale?: string): Promise<string> {
    const auth = this.auth;
    if (!auth) throw new SessionEndedError();
    if (stale !== undefined && auth.access !== stale && !this.expiresSoon(auth.access)) {
      this.emit();
      return auth.access;
    }
    const res = await this.deps.fetch('/auth/token/refresh/', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh: auth.refresh }),
    });
    if (res.status === 400 || res.status === 401 || res.status === 403) {
      this.clear();
      throw new SessionEndedError();
    }
    if (!res.ok) throw await errorFromResponse(res);
    const pair = (await res.json()) as { access: string; refresh: string };
    this.save({ ...auth, access: pair.access, refresh: pair.refresh });
    return pair.access;
  }

  private expiresSoon(token: string): boolean {
    const exp = jwtExpiry(token);
    if (exp === null) return false;
    const now = (this.deps.now ?? Date.now)();
    return exp - now < EARLY_REFRESH_MS;
  }
}

/** `exp` of a JWT in milliseconds, or null if it cannot be read (the server then decides). */
export function jwtExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Web Locks where the browser has them; otherwise only the in-tab promise serialises. */
export function browserLock(): LockFn | undefined {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return undefined;
  return (name, fn) => locks.request(name, fn);
}

export { ApiError };
