import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionEndedError } from './errors';
import { ChatSocket, PING_INTERVAL_MS, type ConnectionStatus, type SocketDeps, type SocketLike } from './socket';
import type { ServerFrame } from './types';

class FakeSocket implements SocketLike {
  readyState = 1;
  sent: unknown[] = [];
  closedWith: number | null = null;
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.closedWith = code;
  }
  serverSends(frame: ServerFrame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverCloses(code: number) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

const ready: ServerFrame = {
  type: 'ready',
  session_id: 's',
  user: { id: 1, username: 'alice', is_admin: false, created_at: '' },
};

function setup(overrides: Partial<SocketDeps> = {}) {
  const sockets: FakeSocket[] = [];
  const statuses: ConnectionStatus[] = [];
  let token = 'a1';
  const deps: SocketDeps = {
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    url: (t) => `ws://x/ws/?token=${t}`,
    accessToken: vi.fn(async () => token),
    refresh: vi.fn(async () => {
      token = 'a2';
      return token;
    }),
    onFrame: vi.fn(),
    onReady: vi.fn(),
    onStatus: (s) => statuses.push(s),
    onSessionEnded: vi.fn(),
    random: () => 0.5,
    ...overrides,
  };
  const socket = new ChatSocket(deps);
  return { socket, sockets, statuses, deps };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ChatSocket', () => {
  it('connects with the token and reports ready', async () => {
    const { socket, sockets, statuses, deps } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets[0]!.url).toBe('ws://x/ws/?token=a1');
    sockets[0]!.serverSends(ready);
    expect(statuses).toEqual(['connecting', 'open']);
    expect(deps.onReady).toHaveBeenCalledTimes(1);
    expect(socket.send({ type: 'ping' })).toBe(true);
  });

  it('reconnects with growing delays and shows reconnecting', async () => {
    const { socket, sockets, statuses } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0]!.serverSends(ready);
    sockets[0]!.serverCloses(1006);
    expect(statuses.at(-1)).toBe('reconnecting');
    expect(socket.send({ type: 'ping' })).toBe(false);
    // attempt 0: ceiling 500, jitter 0.5 -> 375 ms
    await vi.advanceTimersByTimeAsync(374);
    expect(sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(2);
    sockets[1]!.serverCloses(1006);
    // attempt 1: ceiling 1000 -> 750 ms
    await vi.advanceTimersByTimeAsync(749);
    expect(sockets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets).toHaveLength(3);
    sockets[2]!.serverSends(ready);
    expect(statuses.at(-1)).toBe('open');
    // A successful ready resets the backoff.
    sockets[2]!.serverCloses(1001);
    await vi.advanceTimersByTimeAsync(375);
    expect(sockets).toHaveLength(4);
  });

  it('on 4001 renews the token and reconnects with the new one', async () => {
    const { socket, sockets, deps } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0]!.serverSends(ready);
    sockets[0]!.serverCloses(4001);
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(0);
    expect(deps.refresh).toHaveBeenCalledWith('a1');
    expect(sockets[1]!.url).toBe('ws://x/ws/?token=a2');
  });

  it('stops when the session has ended', async () => {
    const { socket, sockets, deps, statuses } = setup({
      refresh: vi.fn(async () => {
        throw new SessionEndedError();
      }),
    });
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0]!.serverCloses(4001);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(deps.onSessionEnded).toHaveBeenCalled();
    expect(sockets).toHaveLength(1);
    expect(statuses.at(-1)).toBe('stopped');
  });

  it('resumes quickly after 4008 (slow consumer)', async () => {
    const { socket, sockets } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0]!.serverSends(ready);
    sockets[0]!.serverCloses(4008);
    await vi.advanceTimersByTimeAsync(100);
    expect(sockets).toHaveLength(2);
  });

  it('pings, and reconnects when the server goes silent', async () => {
    const { socket, sockets } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets[0]!.serverSends(ready);
    await vi.advanceTimersByTimeAsync(PING_INTERVAL_MS);
    expect(sockets[0]!.sent).toContainEqual({ type: 'ping' });
    await vi.advanceTimersByTimeAsync(PING_INTERVAL_MS * 2);
    expect(sockets[0]!.closedWith).toBe(4000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sockets).toHaveLength(2);
  });

  it('stop() closes and never reconnects', async () => {
    const { socket, sockets } = setup();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    socket.stop();
    expect(sockets[0]!.closedWith).toBe(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sockets).toHaveLength(1);
  });
});
