import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Api } from './api';
import { ChatClient, SEND_TIMEOUT_MS, type LiveSocket, type SocketFactory } from './chat';
import type { SocketDeps } from './socket';
import { messageEvent, msg } from './testUtil';
import type { ClientFrame, Message, Room, ServerFrame, User } from './types';

const me: User = { id: 1, username: 'alice', is_admin: false, created_at: '' };
const bob = { id: 2, username: 'bob' };

function room(id: number, extra: Partial<Room> = {}): Room {
  return {
    id,
    name: `room${id}`,
    topic: '',
    is_private: false,
    is_direct: false,
    created_at: '',
    updated_at: '',
    member_count: 2,
    last_seq: 10,
    joined: true,
    role: 'member',
    last_read_seq: 10,
    unread_count: 0,
    ...extra,
  };
}

function fromBob(seq: number, roomId = 1): Message {
  return msg(seq, { room_id: roomId, author: bob, content: `hi ${seq}` });
}

class FakeLive implements LiveSocket {
  open = false;
  sent: ClientFrame[] = [];
  start = vi.fn();
  stop = vi.fn();
  reconnectNow = vi.fn();
  send(frame: ClientFrame): boolean {
    if (!this.open) return false;
    this.sent.push(frame);
    return true;
  }
}

function setup(rooms: Room[], pages: Record<number, Message[]> = {}) {
  const live = new FakeLive();
  let handlers!: Pick<SocketDeps, 'onFrame' | 'onReady' | 'onStatus' | 'onSessionEnded'>;
  const factory: SocketFactory = (h) => {
    handlers = h;
    return live;
  };
  const api = {
    rooms: vi.fn(async () => rooms.map((r) => ({ ...r }))),
    room: vi.fn(async (id: number) => ({ ...rooms.find((r) => r.id === id)! })),
    messages: vi.fn(async (id: number) => pages[id] ?? []),
    markRead: vi.fn(async () => undefined),
    postMessage: vi.fn(async (roomId: number, content: string, clientId: string) =>
      msg(99, { room_id: roomId, content, client_id: clientId, author: { id: me.id, username: me.username } }),
    ),
  };
  const chat = new ChatClient(api as unknown as Api, me, factory, vi.fn());
  const ready = async () => {
    live.open = true;
    handlers.onReady({ type: 'ready', user: me, session_id: 's' });
    await vi.advanceTimersByTimeAsync(0);
  };
  const frame = (f: ServerFrame) => chat.handleFrame(f);
  return { chat, live, api, ready, frame };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubGlobal('crypto', { randomUUID: (() => { let n = 0; return () => `cid-${++n}`; })() });
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('ChatClient', () => {
  it('subscribes every joined room after ready, resuming from the last seq seen', async () => {
    const { chat, live, ready, frame } = setup([room(1), room(2, { last_seq: 40 }), room(3, { joined: false })]);
    await chat.start();
    await ready();
    expect(live.sent).toEqual([
      { type: 'subscribe', room_id: 1, after_seq: 10 },
      { type: 'subscribe', room_id: 2, after_seq: 40 },
    ]);
    frame(messageEvent(fromBob(11)));
    frame(messageEvent(fromBob(12)));
    // The connection drops and comes back: resume after 12, not after the stale list value.
    live.open = false;
    live.sent = [];
    await ready();
    expect(live.sent).toContainEqual({ type: 'subscribe', room_id: 1, after_seq: 12 });
    // The replay overlaps what we have: nothing shows twice.
    frame(messageEvent(fromBob(12)));
    frame(messageEvent(fromBob(13)));
    expect(chat.state.logs[1]!.messages.map((m) => m.seq)).toEqual([11, 12, 13]);
  });

  it('subscribes rooms that appear in a later room list (invitations, direct messages)', async () => {
    const rooms = [room(1)];
    const { chat, live, ready, api } = setup(rooms);
    await chat.start();
    await ready();
    api.rooms.mockResolvedValueOnce([room(1), room(5, { is_direct: true, name: 'alice,bob', last_seq: 3 })]);
    live.sent = [];
    await chat.loadRooms();
    expect(live.sent).toEqual([{ type: 'subscribe', room_id: 5, after_seq: 3 }]);
  });

  it('counts unread messages in rooms not being read, and applies read markers', async () => {
    const { chat, ready, frame } = setup([room(1), room(2)]);
    await chat.start();
    await ready();
    frame(messageEvent(fromBob(11, 2)));
    frame(messageEvent(fromBob(12, 2)));
    frame(messageEvent(msg(13, { room_id: 2, author: { id: 1, username: 'alice' } })));
    expect(chat.state.rooms[2]!.unread_count).toBe(2);
    frame({ type: 'read', room_id: 2, seq: 13 });
    expect(chat.state.rooms[2]!.unread_count).toBe(0);
    expect(chat.state.rooms[2]!.last_read_seq).toBe(13);
  });

  it('marks the active room read while the user reads it', async () => {
    const { chat, api, ready, frame } = setup([room(1, { unread_count: 1, last_read_seq: 9 })], { 1: [fromBob(10)] });
    await chat.start();
    await ready();
    await chat.openRoom(1);
    expect(chat.state.newAfterSeq[1]).toBe(9);
    chat.setReading(true);
    await vi.advanceTimersByTimeAsync(400);
    expect(api.markRead).toHaveBeenCalledWith(1, 10, {});
    frame(messageEvent(fromBob(11)));
    await vi.advanceTimersByTimeAsync(400);
    expect(api.markRead).toHaveBeenLastCalledWith(1, 11, {});
    expect(chat.state.rooms[1]!.unread_count).toBe(0);
    expect(chat.state.announcement.text).toBe('bob: hi 11');
  });

  it('sends a waiting read marker at once, outliving the page, when the page goes away', async () => {
    const { chat, api, ready, frame } = setup([room(1)], { 1: [fromBob(10)] });
    await chat.start();
    await ready();
    await chat.openRoom(1);
    chat.setReading(true);
    frame(messageEvent(fromBob(11)));
    expect(api.markRead).not.toHaveBeenCalled();
    chat.flushReads();
    await vi.advanceTimersByTimeAsync(0);
    expect(api.markRead).toHaveBeenCalledTimes(1);
    expect(api.markRead).toHaveBeenCalledWith(1, 11, { keepalive: true });
    await vi.advanceTimersByTimeAsync(400);
    expect(api.markRead).toHaveBeenCalledTimes(1);
  });

  it('shows a send as pending, confirms it on ack, and fails it on timeout', async () => {
    const { chat, live, ready, frame } = setup([room(1)]);
    await chat.start();
    await ready();
    chat.send(1, '  hello  ');
    expect(live.sent.at(-1)).toEqual({ type: 'send', room_id: 1, message: 'hello', client_id: 'cid-1' });
    expect(chat.state.logs[1]!.pending).toMatchObject([{ client_id: 'cid-1', status: 'sending' }]);
    frame({ type: 'ack', client_id: 'cid-1', message: msg(11, { client_id: 'cid-1', content: 'hello' }) });
    expect(chat.state.logs[1]!.pending).toEqual([]);
    expect(chat.state.logs[1]!.messages.map((m) => m.content)).toEqual(['hello']);

    chat.send(1, 'second');
    await vi.advanceTimersByTimeAsync(SEND_TIMEOUT_MS);
    expect(chat.state.logs[1]!.pending).toMatchObject([{ client_id: 'cid-2', status: 'failed' }]);
  });

  it('retries a failed send over HTTP with the same client_id', async () => {
    const { chat, api, ready, frame } = setup([room(1)]);
    await chat.start();
    await ready();
    chat.send(1, 'hello');
    frame({ type: 'error', code: 'rate_limited', message: 'too fast', ref: 'cid-1' });
    expect(chat.state.logs[1]!.pending[0]!.status).toBe('failed');
    chat.retry(1, 'cid-1');
    await vi.advanceTimersByTimeAsync(0);
    expect(api.postMessage).toHaveBeenCalledWith(1, 'hello', 'cid-1');
    expect(chat.state.logs[1]!.pending).toEqual([]);
  });

  it('resends unacknowledged sends after reconnecting', async () => {
    const { chat, live, ready } = setup([room(1)]);
    await chat.start();
    await ready();
    chat.send(1, 'hello');
    live.open = false;
    live.sent = [];
    await ready();
    expect(live.sent).toContainEqual({ type: 'send', room_id: 1, message: 'hello', client_id: 'cid-1' });
  });

  it('reloads history over HTTP on resync_required', async () => {
    const { chat, api, live, ready, frame } = setup([room(1, { last_seq: 10 })], { 1: [fromBob(9)] });
    await chat.start();
    await ready();
    await chat.openRoom(1);
    api.room.mockResolvedValueOnce(room(1, { last_seq: 2000 }));
    api.messages.mockResolvedValueOnce([fromBob(1999)]);
    live.sent = [];
    frame({ type: 'resync_required', room_id: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(chat.state.logs[1]!.messages.map((m) => m.seq)).toEqual([1999]);
    expect(live.sent).toEqual([
      { type: 'unsubscribe', room_id: 1 },
      { type: 'subscribe', room_id: 1, after_seq: 2000 },
    ]);
  });

  it('tracks presence and typing', async () => {
    const { chat, ready, frame } = setup([room(1)]);
    await chat.start();
    await ready();
    frame({ type: 'subscribed', room_id: 1, last_seq: 10, online: [bob] });
    expect(chat.state.online[1]).toEqual({ 2: 'bob' });
    frame({ type: 'presence', room_id: 1, user: bob, online: false });
    expect(chat.state.online[1]).toEqual({});
    frame({ type: 'typing', room_id: 1, user: bob, typing: true });
    expect(chat.state.typing[1]).toEqual({ 2: 'bob' });
    await vi.advanceTimersByTimeAsync(9000);
    expect(chat.state.typing[1]).toEqual({});
  });
});
