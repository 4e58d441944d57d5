/**
 * HTTP calls to the contract's endpoints, with the access token attached.
 * A 401 renews the token once and retries; a second 401 ends the session.
 */
import { ApiError, SessionEndedError, errorFromResponse } from './errors';
import type { Session } from './session';
import type { AuthResponse, Member, Message, Room, User } from './types';

export class Api {
  private readonly session: Session;
  private readonly fetchFn: typeof fetch;

  constructor(session: Session, fetchFn: typeof fetch) {
    this.session = session;
    this.fetchFn = fetchFn;
  }

  /** `keepalive` lets the request outlive the page (a read marker sent as the tab closes). */
  async request<T>(method: string, path: string, body?: unknown, { keepalive = false } = {}): Promise<T> {
    let token = await this.session.accessToken();
    let res = await this.send(method, path, body, token, keepalive);
    if (res.status === 401) {
      token = await this.session.refresh(token);
      res = await this.send(method, path, body, token, keepalive);
      if (res.status === 401) {
        this.session.clear();
        throw new SessionEndedError();
      }
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  private send(method: string, path: string, body: unknown, token: string | null, keepalive = false): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    return this.fetchFn(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  }

  /** Calls that need no token: register and log in. */
  private async anonymous<T>(path: string, body: unknown): Promise<T> {
    const res = await this.send('POST', path, body, null);
    if (!res.ok) throw await errorFromResponse(res);
    return (await res.json()) as T;
  }

  async login(username: string, password: string): Promise<User> {
    const auth = await this.anonymous<AuthResponse>('/auth/login/', { username, password });
    this.session.save(auth);
    return auth.user;
  }

  async register(username: string, email: string, password: string): Promise<User> {
    const auth = await this.anonymous<AuthResponse>('/auth/register/', { username, email, password });
    this.session.save(auth);
    return auth.user;
  }

  /** Revokes the refresh token on the server (best effort) and forgets the login here. */
  async logout(): Promise<void> {
    const auth = this.session.auth;
    this.session.clear();
    if (!auth) return;
    try {
      await this.fetchFn('/auth/logout/', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${auth.access}` },
        body: JSON.stringify({ refresh: auth.refresh }),
      });
    } catch {
      // Offline: the token still expires on its own, and it is gone from this browser.
    }
  }

  me = () => this.request<User>('GET', '/auth/me/');

  rooms = () => this.request<Room[]>('GET', '/chat/rooms/');
  room = (id: number) => this.request<Room>('GET', `/chat/rooms/${id}/`);
  createRoom = (name: string, topic: string, isPrivate: boolean) =>
    this.request<Room>('POST', '/chat/rooms/', { name, topic, is_private: isPrivate });
  joinRoom = (id: number) => this.request<Room>('POST', `/chat/rooms/${id}/join/`);
  leaveRoom = (id: number) => this.request<void>('POST', `/chat/rooms/${id}/leave/`);
  deleteRoom = (id: number) => this.request<void>('DELETE', `/chat/rooms/${id}/`);
  members = (id: number) => this.request<Member[]>('GET', `/chat/rooms/${id}/members/`);
  invite = (id: number, username: string) =>
    this.request<unknown>('POST', `/chat/rooms/${id}/members/`, { username });
  direct = (username: string) => this.request<Room>('POST', '/chat/direct/', { username });
  markRead = (id: number, seq: number, opts: { keepalive?: boolean } = {}) =>
    this.request<void>('POST', `/chat/rooms/${id}/read/`, { seq }, opts);

  messages = (id: number, opts: { limit: number; beforeSeq?: number }) => {
    const q = new URLSearchParams({ limit: String(opts.limit) });
    if (opts.beforeSeq !== undefined) q.set('before_seq', String(opts.beforeSeq));
    return this.request<Message[]>('GET', `/chat/rooms/${id}/messages/?${q}`);
  };
  postMessage = (id: number, message: string, clientId: string) =>
    this.request<Message>('POST', `/chat/rooms/${id}/messages/`, { message, client_id: clientId });
  editMessage = (roomId: number, messageId: number, message: string) =>
    this.request<Message>('PATCH', `/chat/rooms/${roomId}/messages/${messageId}/`, { message });
  deleteMessage = (roomId: number, messageId: number) =>
    this.request<void>('DELETE', `/chat/rooms/${roomId}/messages/${messageId}/`);

  adminUsers = () => this.request<User[]>('GET', '/admin/users/');
  adminUpdateUser = (id: number, patch: { is_active?: boolean; is_admin?: boolean }) =>
    this.request<User>('PATCH', `/admin/users/${id}/`, patch);
  adminRooms = () => this.request<Room[]>('GET', '/admin/rooms/');
}

export { ApiError };
