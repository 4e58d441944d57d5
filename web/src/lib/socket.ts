/**
 * One WebSocket to `/ws/`, kept alive: reconnects with backoff, renews the
 * token on 4001, resumes at once after 4008 (slow consumer), and notices dead
 * connections (laptop sleep, lost Wi-Fi) by a ping with a deadline.
 *
 * It knows nothing about rooms: on each `ready` the owner re-subscribes.
 */
import { backoffDelay } from './backoff';
import { SessionEndedError } from './errors';
import type { ClientFrame, ServerFrame } from './types';

export type ConnectionStatus = 'connecting' | 'open' | 'reconnecting' | 'stopped';

/** The part of the browser's WebSocket this module uses (a fake in tests). */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface SocketDeps {
  createSocket(url: string): SocketLike;
  url(token: string): string;
  accessToken(): Promise<string>;
  refresh(stale: string): Promise<string>;
  onFrame(frame: ServerFrame): void;
  onReady(frame: Extract<ServerFrame, { type: 'ready' }>): void;
  onStatus(status: ConnectionStatus): void;
  /** The login is over: stop for good. */
  onSessionEnded(): void;
  random?: () => number;
}

const OPEN = 1;
export const PING_INTERVAL_MS = 25_000;
/** No frame at all for this long means the connection is dead even if the OS has not noticed. */
export const SILENCE_LIMIT_MS = 60_000;

export const CLOSE_AUTH = 4001;
export const CLOSE_SLOW_CONSUMER = 4008;
export const CLOSE_ABUSE = 4029;

export class ChatSocket {
  private readonly deps: SocketDeps;
  private ws: SocketLike | null = null;
  private token = '';
  private attempt = 0;
  private stopped = true;
  private status: ConnectionStatus = 'stopped';
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private everOpened = false;

  constructor(deps: SocketDeps) {
    this.deps = deps;
  }

  get connectionStatus(): ConnectionStatus {
    return this.status;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000, 'bye');
    }
    this.setStatus('stopped');
  }

  /** Sends a frame if the connection is ready; returns false otherwise. */
  send(frame: ClientFrame): boolean {
    if (!this.ws || this.ws.readyState !== OPEN || this.status !== 'open') return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Skip the backoff wait, e.g. when the browser reports the network is back. */
  reconnectNow(): void {
    if (this.stopped || this.status === 'open' || this.ws) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.connect();
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.deps.onStatus(status);
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    this.setStatus(this.everOpened ? 'reconnecting' : 'connecting');
    try {
      this.token = await this.deps.accessToken();
    } catch (err) {
      this.handleTokenError(err);
      return;
    }
    if (this.stopped) return;
    const ws = this.deps.createSocket(this.deps.url(this.token));
    this.ws = ws;
    ws.onmessage = (ev) => this.handleMessage(ev.data);
    ws.onclose = (ev) => this.handleClose(ws, ev.code);
    ws.onerror = () => {
      // Always followed by a close event, which does the work.
    };
  }

  private handleMessage(data: unknown): void {
    this.lastFrameAt = Date.now();
    if (typeof data !== 'string') return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return;
    }
    if (frame.type === 'ready') {
      this.attempt = 0;
      this.everOpened = true;
      this.setStatus('open');
      this.startPing();
      this.deps.onReady(frame);
      return;
    }
    this.deps.onFrame(frame);
  }

  private handleClose(ws: SocketLike, code: number): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimers();
    if (this.stopped) return;
    this.setStatus(this.everOpened ? 'reconnecting' : 'connecting');
    if (code === CLOSE_AUTH) {
      // The access token expired or was revoked mid-connection.
      this.deps.refresh(this.token).then(
        () => this.schedule(this.attempt++ === 0 ? 0 : backoffDelay(this.attempt, { random: this.deps.random })),
        (err) => this.handleTokenError(err),
      );
      return;
    }
    if (code === CLOSE_SLOW_CONSUMER) {
      // The server dropped us for falling behind; resuming by seq loses nothing.
      this.schedule(this.attempt++ === 0 ? 100 : backoffDelay(this.attempt, { random: this.deps.random }));
      return;
    }
    const delay = backoffDelay(this.attempt++, {
      random: this.deps.random,
      baseMs: code === CLOSE_ABUSE ? 5_000 : 500,
    });
    this.schedule(delay);
  }

  private handleTokenError(err: unknown): void {
    if (err instanceof SessionEndedError) {
      this.stop();
      this.deps.onSessionEnded();
      return;
    }
    // Server unreachable while renewing: try again later like any failed connect.
    this.schedule(backoffDelay(this.attempt++, { random: this.deps.random }));
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private startPing(): void {
    this.lastFrameAt = Date.now();
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        // Treat as closed now: the browser may take minutes to notice.
        ws.onclose = null;
        ws.close(4000, 'silent');
        this.handleClose(ws, 1006);
        return;
      }
      this.send({ type: 'ping' });
    }, PING_INTERVAL_MS);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }
}

export function websocketUrl(token: string, loc: { protocol: string; host: string } = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws/?token=${encodeURIComponent(token)}`;
}

/** Adapts the browser's WebSocket to SocketLike. */
export function browserSocket(url: string): SocketLike {
  const ws = new WebSocket(url);
  const socket: SocketLike = {
    get readyState() {
      return ws.readyState;
    },
    send: (data) => ws.send(data),
    close: (code, reason) => ws.close(code, reason),
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  };
  ws.onopen = (ev) => socket.onopen?.(ev);
  ws.onmessage = (ev) => socket.onmessage?.({ data: ev.data });
  ws.onclose = (ev) => socket.onclose?.({ code: ev.code });
  ws.onerror = (ev) => socket.onerror?.(ev);
  return socket;
}
