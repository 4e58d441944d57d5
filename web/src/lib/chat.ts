/**
 * The chat session of one signed-in user: room list, every room's timeline,
 * presence, typing and the live connection, held in one Store that the React
 * views read. All protocol decisions live here and in roomLog/socket, so they
 * can be tested without a browser.
 *
 * Subscriptions: every joined room is subscribed on each `ready` (for unread
 * counts and presence), resuming from the last event seq seen so nothing is
 * missed or repeated; a public room being previewed is subscribed too.
 */
import type { Api } from './api';
import { ApiError, SessionEndedError, describeError } from './errors';
import {
  PAGE_SIZE,
  addPending,
  applyEvent,
  confirmSend,
  discardPending,
  emptyLog,
  hasGap,
  mergePage,
  newestSeq,
  oldestSeq,
  resetWithPage,
  setBaseline,
  setPendingStatus,
  type RoomLog,
} from './roomLog';
import type { ConnectionStatus, SocketDeps } from './socket';
import { Store } from './store';
import { isRoomEvent, type ClientFrame, type Message, type Room, type RoomEvent, type ServerFrame, type User, type UserRef } from './types';

export interface ChatState {
  me: User;
  status: ConnectionStatus;
  rooms: Record<number, Room>;
  roomsLoaded: boolean;
  logs: Record<number, RoomLog>;
  /** roomId → userId → username of users online in the room. */
  online: Record<number, Record<number, string>>;
  /** roomId → userId → username of users typing now. */
  typing: Record<number, Record<number, string>>;
  activeRoomId: number | null;
  /** The "new messages" line of each room, fixed when the room was opened. */
  newAfterSeq: Record<number, number | null>;
  loadingOlder: Record<number, boolean>;
  /** Bumped on member events so an open member list reloads. */
  memberEpoch: Record<number, number>;
  /** Text for the screen reader's live region. */
  announcement: { id: number; text: string };
  notice: { id: number; text: string } | null;
}

/** What the chat needs from the connection (ChatSocket, or a fake in tests). */
export interface LiveSocket {
  start(): void;
  stop(): void;
  send(frame: ClientFrame): boolean;
  reconnectNow(): void;
}

export type SocketFactory = (
  handlers: Pick<SocketDeps, 'onFrame' | 'onReady' | 'onStatus' | 'onSessionEnded'>,
) => LiveSocket;

/** How long a send may wait for its ack before it is offered for retry. */
export const SEND_TIMEOUT_MS = 10_000;
/** How long an event gap may stay open before the room is reloaded over HTTP. */
export const GAP_TIMEOUT_MS = 2_000;
/** What is on screen this long counts as read (a scroll past does not). */
const READ_DELAY_MS = 300;
const TYPING_RESEND_MS = 4_000;
const TYPING_EXPIRY_MS = 8_000;
/** A room is reloaded at most this often, so a server that disagrees about seqs cannot cause a loop. */
const RESYNC_MIN_INTERVAL_MS = 5_000;

export class ChatClient {
  readonly store: Store<ChatState>;
  private readonly api: Api;
  private readonly socket: LiveSocket;
  private readonly onSessionEnded: () => void;
  private readonly subscribed = new Set<number>();
  private readonly resyncing = new Set<number>();
  private readonly lastResync = new Map<number, number>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly typingSent = new Map<number, { typing: boolean; at: number }>();
  private reading = false;
  private announceId = 0;

  constructor(api: Api, me: User, socketFactory: SocketFactory, onSessionEnded: () => void) {
    this.api = api;
    this.onSessionEnded = onSessionEnded;
    this.store = new Store<ChatState>({
      me,
      status: 'connecting',
      rooms: {},
      roomsLoaded: false,
      logs: {},
      online: {},
      typing: {},
      activeRoomId: null,
      newAfterSeq: {},
      loadingOlder: {},
      memberEpoch: {},
      announcement: { id: 0, text: '' },
      notice: null,
    });
    this.socket = socketFactory({
      onFrame: (f) => this.handleFrame(f),
      onReady: () => void this.handleReady(),
      onStatus: (status) => this.store.set({ status }),
      onSessionEnded: () => this.onSessionEnded(),
    });
  }

  get state(): ChatState {
    return this.store.get();
  }

  async start(): Promise<void> {
    await this.loadRooms().catch((err) => this.fail(err));
    this.socket.start();
  }

  stop(): void {
    this.socket.stop();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** The network came back: skip the remaining backoff. */
  networkOnline(): void {
    this.socket.reconnectNow();
  }

  // ---- rooms ---------------------------------------------------------------

  async loadRooms(): Promise<void> {
    const list = await this.api.rooms();
    this.store.set((s) => {
      const rooms: Record<number, Room> = {};
      for (const r of list) rooms[r.id] = r;
      // A room being previewed (public, not joined) is kept even if absent.
      const active = s.activeRoomId !== null ? s.rooms[s.activeRoomId] : undefined;
      if (active && !rooms[active.id] && !active.is_private) rooms[active.id] = active;
      return { ...s, rooms, roomsLoaded: true };
    });
    this.syncSubscriptions();
  }

  /**
   * Subscribes joined rooms not subscribed yet on this connection: rooms
   * created, joined or entered by invitation since the last look.
   */
  private syncSubscriptions(): void {
    const s = this.state;
    for (const room of Object.values(s.rooms)) {
      if ((room.joined || room.id === s.activeRoomId) && !this.subscribed.has(room.id)) this.subscribe(room.id, room.last_seq);
    }
  }

  /** The signed-in user's own record changed (e.g. made an admin). */
  setMe(me: User): void {
    if (me.id === this.state.me.id) this.store.set({ me });
  }

  private upsertRoom(room: Room): void {
    this.store.set((s) => ({ ...s, rooms: { ...s.rooms, [room.id]: { ...s.rooms[room.id], ...room } } }));
  }

  private patchRoom(roomId: number, patch: Partial<Room>): void {
    this.store.set((s) => {
      const room = s.rooms[roomId];
      if (!room) return s;
      return { ...s, rooms: { ...s.rooms, [roomId]: { ...room, ...patch } } };
    });
  }

  private removeRoom(roomId: number): void {
    this.subscribed.delete(roomId);
    this.store.set((s) => {
      const rooms = { ...s.rooms };
      delete rooms[roomId];
      const logs = { ...s.logs };
      delete logs[roomId];
      return { ...s, rooms, logs, activeRoomId: s.activeRoomId === roomId ? null : s.activeRoomId };
    });
  }

  async createRoom(name: string, topic: string, isPrivate: boolean): Promise<Room> {
    const room = await this.api.createRoom(name, topic, isPrivate);
    this.upsertRoom(room);
    this.subscribe(room.id, room.last_seq);
    return room;
  }

  async joinRoom(roomId: number): Promise<Room> {
    const room = await this.api.joinRoom(roomId);
    this.upsertRoom({ ...room, joined: true });
    this.subscribe(roomId, room.last_seq);
    return room;
  }

  async leaveRoom(roomId: number): Promise<void> {
    await this.api.leaveRoom(roomId);
    const room = this.state.rooms[roomId];
    this.socket.send({ type: 'unsubscribe', room_id: roomId });
    if (!room || room.is_private || room.is_direct) this.removeRoom(roomId);
    else {
      this.subscribed.delete(roomId);
      this.patchRoom(roomId, { joined: false, role: null, unread_count: 0 });
    }
  }

  async startDirect(username: string): Promise<Room> {
    const room = await this.api.direct(username);
    this.upsertRoom(room);
    this.subscribe(room.id, room.last_seq);
    return room;
  }

  // ---- reading -------------------------------------------------------------

  private log(roomId: number): RoomLog {
    return this.state.logs[roomId] ?? emptyLog();
  }

  private setLog(roomId: number, update: (log: RoomLog) => RoomLog): void {
    this.store.set((s) => {
      const before = s.logs[roomId] ?? emptyLog();
      const after = update(before);
      return after === before && s.logs[roomId] ? s : { ...s, logs: { ...s.logs, [roomId]: after } };
    });
  }

  /** Shows a room: loads its newest page the first time and subscribes to it. */
  async openRoom(roomId: number | null): Promise<void> {
    const prev = this.state.activeRoomId;
    if (prev !== null && prev !== roomId) this.setTyping(prev, false);
    if (roomId === null) {
      this.store.set({ activeRoomId: null });
      return;
    }
    const room = this.state.rooms[roomId];
    this.store.set((s) => ({
      ...s,
      activeRoomId: roomId,
      newAfterSeq: {
        ...s.newAfterSeq,
        [roomId]: room && room.unread_count > 0 ? room.last_read_seq : null,
      },
    }));
    if (this.log(roomId).historyLoaded) return;
    try {
      if (this.subscribed.has(roomId)) {
        const page = await this.api.messages(roomId, { limit: PAGE_SIZE });
        this.setLog(roomId, (log) => mergePage(log, page, 'latest'));
      } else {
        await this.reload(roomId);
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.removeRoom(roomId);
        this.notify('That room does not exist or you cannot see it.');
      } else this.fail(err);
    }
  }

  /**
   * Fetches the room's current seq, then its newest page, then subscribes
   * after that seq: whatever happens in between is replayed, and replays are
   * idempotent, so the order of these steps is what makes this race-free.
   */
  private async reload(roomId: number): Promise<void> {
    if (this.resyncing.has(roomId)) return;
    this.resyncing.add(roomId);
    try {
      const room = await this.api.room(roomId);
      this.upsertRoom(room);
      const page = await this.api.messages(roomId, { limit: PAGE_SIZE });
      this.setLog(roomId, (log) => resetWithPage(log, page, room.last_seq));
      if (this.subscribed.has(roomId)) this.socket.send({ type: 'unsubscribe', room_id: roomId });
      this.subscribed.delete(roomId);
      this.subscribe(roomId, room.last_seq);
    } finally {
      this.resyncing.delete(roomId);
    }
  }

  async loadOlder(roomId: number): Promise<void> {
    const log = this.log(roomId);
    const before = oldestSeq(log);
    if (!log.historyLoaded || !log.hasOlder || before === null || this.state.loadingOlder[roomId]) return;
    this.store.set((s) => ({ ...s, loadingOlder: { ...s.loadingOlder, [roomId]: true } }));
    try {
      const page = await this.api.messages(roomId, { limit: PAGE_SIZE, beforeSeq: before });
      this.setLog(roomId, (l) => mergePage(l, page, 'older'));
    } catch (err) {
      this.fail(err);
    } finally {
      this.store.set((s) => ({ ...s, loadingOlder: { ...s.loadingOlder, [roomId]: false } }));
    }
  }

  /**
   * The user is looking at the bottom of the active room in a visible tab:
   * everything shown counts as read.
   */
  setReading(reading: boolean): void {
    this.reading = reading;
    const roomId = this.state.activeRoomId;
    if (reading && roomId !== null) this.scheduleMarkRead(roomId);
  }

  private scheduleMarkRead(roomId: number): void {
    this.later(`read-${roomId}`, READ_DELAY_MS, () => void this.markRead(roomId));
  }

  /**
   * The page is going away (closed, reloaded, navigated): read markers still
   * waiting out their delay are sent now, on requests that outlive the page,
   * so what the user saw does not come back as unread.
   */
  flushReads(): void {
    for (const key of [...this.timers.keys()]) {
      if (!key.startsWith('read-')) continue;
      this.cancel(key);
      void this.markRead(Number(key.slice('read-'.length)), { keepalive: true });
    }
  }

  private async markRead(roomId: number, opts: { keepalive?: boolean } = {}): Promise<void> {
    const room = this.state.rooms[roomId];
    const seq = newestSeq(this.log(roomId));
    if (!room || !room.joined || seq <= room.last_read_seq) {
      if (room && room.unread_count !== 0 && seq >= room.last_read_seq) this.patchRoom(roomId, { unread_count: 0 });
      return;
    }
    this.patchRoom(roomId, { last_read_seq: seq, unread_count: 0 });
    try {
      await this.api.markRead(roomId, seq, opts);
    } catch {
      // Not worth bothering the user: the marker moves again with the next message.
    }
  }

  // ---- writing -------------------------------------------------------------

  send(roomId: number, text: string): void {
    const content = text.trim();
    if (!content) return;
    const clientId = crypto.randomUUID();
    this.setLog(roomId, (log) =>
      addPending(log, { client_id: clientId, content, created_at: new Date().toISOString(), status: 'sending' }),
    );
    this.setTyping(roomId, false);
    this.transmit(roomId, clientId, content);
  }

  private transmit(roomId: number, clientId: string, content: string): void {
    if (this.socket.send({ type: 'send', room_id: roomId, message: content, client_id: clientId })) {
      this.later(`send-${clientId}`, SEND_TIMEOUT_MS, () =>
        this.setLog(roomId, (log) => setPendingStatus(log, clientId, 'failed')),
      );
    } else {
      void this.sendOverHttp(roomId, clientId, content);
    }
  }

  /** Retries a failed send; the same client_id makes a duplicate impossible. */
  retry(roomId: number, clientId: string): void {
    const pending = this.log(roomId).pending.find((p) => p.client_id === clientId);
    if (!pending) return;
    this.setLog(roomId, (log) => setPendingStatus(log, clientId, 'sending'));
    void this.sendOverHttp(roomId, clientId, pending.content);
  }

  discard(roomId: number, clientId: string): void {
    this.setLog(roomId, (log) => discardPending(log, clientId));
  }

  private async sendOverHttp(roomId: number, clientId: string, content: string): Promise<void> {
    try {
      const message = await this.api.postMessage(roomId, content, clientId);
      this.cancel(`send-${clientId}`);
      this.setLog(roomId, (log) => confirmSend(log, message));
    } catch (err) {
      this.setLog(roomId, (log) => setPendingStatus(log, clientId, 'failed'));
      if (err instanceof ApiError && err.status !== 0) this.notify(err.message);
    }
  }

  async editMessage(message: Message, text: string): Promise<void> {
    const content = text.trim();
    if (!content || content === message.content) return;
    const updated = await this.api.editMessage(message.room_id, message.id, content);
    this.setLog(message.room_id, (log) => replaceLoaded(log, updated));
  }

  async deleteMessage(message: Message): Promise<void> {
    await this.api.deleteMessage(message.room_id, message.id);
    this.setLog(message.room_id, (log) => replaceLoaded(log, { ...message, content: '', deleted: true }));
  }

  /** Tells the room we are (not) typing; repeated while typing so the server's 6 s expiry does not end it. */
  setTyping(roomId: number, typing: boolean): void {
    const last = this.typingSent.get(roomId);
    const now = Date.now();
    if (typing && last?.typing && now - last.at < TYPING_RESEND_MS) return;
    if (!typing && !last?.typing) return;
    if (this.socket.send({ type: 'typing', room_id: roomId, typing })) this.typingSent.set(roomId, { typing, at: now });
  }

  // ---- the live connection ---------------------------------------------------

  private subscribe(roomId: number, fallbackSeq: number): void {
    const log = this.log(roomId);
    const afterSeq = log.lastEventSeq >= 0 ? log.lastEventSeq : fallbackSeq;
    this.setLog(roomId, (l) => setBaseline(l, afterSeq));
    if (this.socket.send({ type: 'subscribe', room_id: roomId, after_seq: afterSeq })) this.subscribed.add(roomId);
  }

  private async handleReady(): Promise<void> {
    this.subscribed.clear();
    this.store.set((s) => ({ ...s, online: {}, typing: {} }));
    this.typingSent.clear();
    // Rooms may have appeared (invitations, direct messages) or vanished while away.
    await this.loadRooms().catch(() => this.syncSubscriptions());
    const s = this.state;
    // Sends that never got an ack are sent again; their client_id prevents doubles.
    for (const [roomId, log] of Object.entries(s.logs)) {
      for (const p of log.pending) {
        if (p.status === 'sending') this.transmit(Number(roomId), p.client_id, p.content);
      }
    }
  }

  handleFrame(frame: ServerFrame): void {
    if (isRoomEvent(frame)) {
      this.handleRoomEvent(frame);
      return;
    }
    switch (frame.type) {
      case 'subscribed': {
        this.store.set((s) => ({ ...s, online: { ...s.online, [frame.room_id]: usersById(frame.online) } }));
        const log = this.log(frame.room_id);
        // The replay has ended here: anything still missing will not come.
        if (hasGap(log) || log.lastEventSeq < frame.last_seq) void this.resync(frame.room_id);
        this.patchRoom(frame.room_id, { last_seq: frame.last_seq });
        break;
      }
      case 'ack': {
        this.cancel(`send-${frame.client_id}`);
        this.setLog(frame.message.room_id, (log) => confirmSend(log, frame.message));
        break;
      }
      case 'typing':
        this.setTypingUser(frame.room_id, frame.user, frame.typing);
        break;
      case 'presence':
        this.store.set((s) => {
          const room = { ...s.online[frame.room_id] };
          if (frame.online) room[frame.user.id] = frame.user.username;
          else delete room[frame.user.id];
          return { ...s, online: { ...s.online, [frame.room_id]: room } };
        });
        break;
      case 'read':
        this.applyReadMarker(frame.room_id, frame.seq);
        break;
      case 'resync_required':
        void this.resync(frame.room_id);
        break;
      case 'error':
        this.handleError(frame);
        break;
      default:
        break;
    }
  }

  private handleError(frame: Extract<ServerFrame, { type: 'error' }>): void {
    const ref = frame.ref;
    if (ref) {
      for (const [roomId, log] of Object.entries(this.state.logs)) {
        if (log.pending.some((p) => p.client_id === ref)) {
          this.cancel(`send-${ref}`);
          this.setLog(Number(roomId), (l) => setPendingStatus(l, ref, 'failed'));
          this.notify(frame.message);
          return;
        }
      }
    }
    if (frame.code === 'rate_limited') this.notify('Slow down: you are sending too fast.');
  }

  private async resync(roomId: number): Promise<void> {
    const now = Date.now();
    if (now - (this.lastResync.get(roomId) ?? -Infinity) < RESYNC_MIN_INTERVAL_MS) {
      this.later(`resync-${roomId}`, RESYNC_MIN_INTERVAL_MS, () => void this.resync(roomId));
      return;
    }
    this.lastResync.set(roomId, now);
    try {
      await this.reload(roomId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.removeRoom(roomId);
    }
  }

  private handleRoomEvent(event: RoomEvent): void {
    let applied: RoomEvent[] = [];
    this.setLog(event.room_id, (log) => {
      const r = applyEvent(log, event);
      applied = r.applied;
      return r.log;
    });
    if (hasGap(this.log(event.room_id))) {
      this.later(`gap-${event.room_id}`, GAP_TIMEOUT_MS, () => {
        if (hasGap(this.log(event.room_id))) void this.resync(event.room_id);
      });
    }
    for (const e of applied) this.sideEffects(e);
  }

  private sideEffects(event: RoomEvent): void {
    const s = this.state;
    const me = s.me;
    const room = s.rooms[event.room_id];
    if (room) this.patchRoom(event.room_id, { last_seq: Math.max(room.last_seq, event.seq) });
    switch (event.type) {
      case 'message': {
        const m = event.message;
        if (!room || m.author.id === me.id) break;
        this.setTypingUser(m.room_id, m.author, false);
        const active = s.activeRoomId === m.room_id;
        if (active) this.announce(`${m.author.username}: ${m.content}`);
        if (active && this.reading) this.scheduleMarkRead(m.room_id);
        else if (room.joined && m.seq > room.last_read_seq) {
          this.patchRoom(m.room_id, { unread_count: Math.min(1000, room.unread_count + 1) });
        }
        break;
      }
      case 'member_joined':
      case 'member_left': {
        const joined = event.type === 'member_joined';
        this.store.set((st) => ({
          ...st,
          memberEpoch: { ...st.memberEpoch, [event.room_id]: (st.memberEpoch[event.room_id] ?? 0) + 1 },
        }));
        if (!room) break;
        const patch: Partial<Room> = { member_count: Math.max(0, room.member_count + (joined ? 1 : -1)) };
        if (event.user.id === me.id) {
          patch.joined = joined;
          if (!joined && (room.is_private || room.is_direct)) {
            this.removeRoom(room.id);
            this.notify(`You are no longer a member of ${room.name}.`);
            break;
          }
        }
        this.patchRoom(room.id, patch);
        break;
      }
      case 'room_updated': {
        const { name, topic, is_private, updated_at, member_count } = event.room;
        this.patchRoom(event.room_id, { name, topic, is_private, updated_at, member_count });
        break;
      }
      case 'room_deleted':
        if (room) this.notify(`${room.name} was deleted.`);
        this.removeRoom(event.room_id);
        break;
      default:
        break;
    }
  }

  private applyReadMarker(roomId: number, seq: number): void {
    const room = this.state.rooms[roomId];
    if (!room || seq <= room.last_read_seq) return;
    const meId = this.state.me.id;
    const log = this.log(roomId);
    const unread =
      seq >= Math.max(room.last_seq, newestSeq(log))
        ? 0
        : log.messages.filter((m) => m.seq > seq && m.author.id !== meId && !m.deleted).length;
    this.patchRoom(roomId, { last_read_seq: seq, unread_count: unread });
  }

  private setTypingUser(roomId: number, user: UserRef, typing: boolean): void {
    if (user.id === this.state.me.id) return;
    const key = `typing-${roomId}-${user.id}`;
    this.store.set((s) => {
      const room = { ...s.typing[roomId] };
      if (typing) room[user.id] = user.username;
      else if (room[user.id] === undefined) return s;
      else delete room[user.id];
      return { ...s, typing: { ...s.typing, [roomId]: room } };
    });
    if (typing) this.later(key, TYPING_EXPIRY_MS, () => this.setTypingUser(roomId, user, false));
    else this.cancel(key);
  }

  // ---- helpers -------------------------------------------------------------

  private announce(text: string): void {
    this.store.set({ announcement: { id: ++this.announceId, text: text.slice(0, 300) } });
  }

  notify(text: string): void {
    this.store.set({ notice: { id: ++this.announceId, text } });
  }

  dismissNotice(): void {
    this.store.set({ notice: null });
  }

  private fail(err: unknown): void {
    if (err instanceof SessionEndedError) {
      this.onSessionEnded();
      return;
    }
    this.notify(describeError(err));
  }

  private later(key: string, ms: number, fn: () => void): void {
    this.cancel(key);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        fn();
      }, ms),
    );
  }

  private cancel(key: string): void {
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.delete(key);
  }
}

function usersById(users: readonly UserRef[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const u of users) out[u.id] = u.username;
  return out;
}

/** Applies an HTTP edit/delete answer to a message already shown. */
function replaceLoaded(log: RoomLog, message: Message): RoomLog {
  let changed = false;
  const messages = log.messages.map((m) => {
    if (m.seq !== message.seq) return m;
    const next = pickNewer(m, message);
    if (next !== m) changed = true;
    return next;
  });
  return changed ? { ...log, messages } : log;
}

function pickNewer(current: Message, incoming: Message): Message {
  if (current.deleted) return current;
  if (incoming.deleted) return incoming;
  return (incoming.edited_at ?? '') >= (current.edited_at ?? '') ? incoming : current;
}
