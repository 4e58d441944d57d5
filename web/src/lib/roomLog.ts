/**
 * The state of one room's timeline, as a pure reducer.
 *
 * Two sequence spaces meet here. Room *events* (message, edit, delete, member
 * and room changes) are numbered by the room: the server promises no gap and no
 * duplicate, but a reconnect replays from `after_seq`, a resubscribe may overlap
 * and a bug anywhere could reorder. So events are applied strictly in seq order:
 * older or repeated ones are dropped, early ones wait in `buffered` until the
 * missing ones arrive (or the caller gives up and reloads over HTTP).
 *
 * *Messages* keep the seq of the event that created them, which orders the
 * timeline and lets history pages (HTTP) and live events merge without
 * duplicates.
 */
import type { Message, RoomEvent } from './types';

export type PendingStatus = 'sending' | 'failed';

/** A message typed here and not yet confirmed by the server. */
export interface PendingMessage {
  client_id: string;
  content: string;
  created_at: string;
  status: PendingStatus;
}

export interface RoomLog {
  /** Known messages, ascending by seq, unique by seq. */
  messages: Message[];
  /** Highest room event seq applied without a gap; -1 until a baseline is known. */
  lastEventSeq: number;
  /** Events that arrived ahead of a gap, ascending by seq, unique. */
  buffered: RoomEvent[];
  pending: PendingMessage[];
  /** The newest history page has been loaded over HTTP. */
  historyLoaded: boolean;
  /** The server may hold messages older than `messages[0]`. */
  hasOlder: boolean;
}

export const PAGE_SIZE = 50;

export function emptyLog(): RoomLog {
  return {
    messages: [],
    lastEventSeq: -1,
    buffered: [],
    pending: [],
    historyLoaded: false,
    hasOlder: true,
  };
}

/** Sets where the live stream starts, e.g. the `after_seq` of a subscription. */
export function setBaseline(log: RoomLog, seq: number): RoomLog {
  if (seq <= log.lastEventSeq) return log;
  const next = { ...log, lastEventSeq: seq };
  return drain(next, []).log;
}

export function hasGap(log: RoomLog): boolean {
  return log.buffered.length > 0;
}

export interface ApplyResult {
  log: RoomLog;
  /** Events applied by this call, in seq order (an out-of-order one may release several). */
  applied: RoomEvent[];
}

export function applyEvent(log: RoomLog, event: RoomEvent): ApplyResult {
  if (log.lastEventSeq < 0) {
    // Without a baseline there is nothing to order against: the first event
    // received starts the stream.
    log = { ...log, lastEventSeq: event.seq - 1 };
  }
  if (event.seq <= log.lastEventSeq) return { log, applied: [] };
  if (event.seq > log.lastEventSeq + 1) {
    if (log.buffered.some((e) => e.seq === event.seq)) return { log, applied: [] };
    const buffered = [...log.buffered, event].sort((a, b) => a.seq - b.seq);
    return { log: { ...log, buffered }, applied: [] };
  }
  const applied = [event];
  const next = { ...effect(log, event), lastEventSeq: event.seq };
  return drain(next, applied);
}

function drain(log: RoomLog, applied: RoomEvent[]): ApplyResult {
  let current = log;
  let buffered = current.buffered.filter((e) => e.seq > current.lastEventSeq);
  while (buffered.length > 0 && buffered[0]!.seq === current.lastEventSeq + 1) {
    const event = buffered[0]!;
    buffered = buffered.slice(1);
    current = { ...effect(current, event), lastEventSeq: event.seq };
    applied.push(event);
  }
  return { log: { ...current, buffered }, applied };
}

function effect(log: RoomLog, event: RoomEvent): RoomLog {
  switch (event.type) {
    case 'message': {
      const withMessage = { ...log, messages: upsert(log.messages, event.message) };
      return removePendingFor(withMessage, event.message);
    }
    case 'message_edited':
    case 'message_deleted':
      // A message older than the loaded range stays unloaded: inserting it
      // would leave a hole that the history pager could not see.
      if (indexOfSeq(log.messages, event.message.seq) < 0) return log;
      return { ...log, messages: upsert(log.messages, event.message) };
    default:
      return log;
  }
}

/** Merges a page of history (ascending) into the log. */
export function mergePage(
  log: RoomLog,
  page: Message[],
  kind: 'latest' | 'older',
  limit = PAGE_SIZE,
): RoomLog {
  let messages = log.messages;
  for (const m of page) messages = upsert(messages, m);
  const full = page.length >= limit;
  const hasOlder = kind === 'older' ? full : log.historyLoaded ? log.hasOlder : full;
  let next: RoomLog = { ...log, messages, hasOlder, historyLoaded: true };
  for (const m of page) next = removePendingFor(next, m);
  return next;
}

/** Drops everything loaded and starts again from a fresh newest page. */
export function resetWithPage(log: RoomLog, page: Message[], lastEventSeq: number): RoomLog {
  const fresh = mergePage({ ...emptyLog(), pending: log.pending }, page, 'latest');
  return { ...fresh, lastEventSeq, buffered: log.buffered.filter((e) => e.seq > lastEventSeq) };
}

export function addPending(log: RoomLog, pending: PendingMessage): RoomLog {
  return { ...log, pending: [...log.pending.filter((p) => p.client_id !== pending.client_id), pending] };
}

export function setPendingStatus(log: RoomLog, clientId: string, status: PendingStatus): RoomLog {
  if (!log.pending.some((p) => p.client_id === clientId && p.status !== status)) return log;
  return {
    ...log,
    pending: log.pending.map((p) => (p.client_id === clientId ? { ...p, status } : p)),
  };
}

export function discardPending(log: RoomLog, clientId: string): RoomLog {
  return { ...log, pending: log.pending.filter((p) => p.client_id !== clientId) };
}

/** The server stored our message (an `ack`, or the HTTP answer to a send). */
export function confirmSend(log: RoomLog, message: Message): RoomLog {
  // An ack is not a room event, so it does not move lastEventSeq: the matching
  // `message` event still arrives and is deduplicated by its seq.
  return removePendingFor({ ...log, messages: upsert(log.messages, message) }, message);
}

function removePendingFor(log: RoomLog, message: Message): RoomLog {
  if (!message.client_id || !log.pending.some((p) => p.client_id === message.client_id)) return log;
  return { ...log, pending: log.pending.filter((p) => p.client_id !== message.client_id) };
}

/** Binary search; returns the index of the message with that seq, or -1. */
export function indexOfSeq(messages: readonly Message[], seq: number): number {
  const i = lowerBound(messages, seq);
  return i < messages.length && messages[i]!.seq === seq ? i : -1;
}

function lowerBound(messages: readonly Message[], seq: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upsert(messages: Message[], message: Message): Message[] {
  const i = lowerBound(messages, message.seq);
  const existing = messages[i];
  if (existing && existing.seq === message.seq) {
    if (!isNewer(message, existing)) return messages;
    const copy = messages.slice();
    copy[i] = message;
    return copy;
  }
  const copy = messages.slice();
  copy.splice(i, 0, message);
  return copy;
}

/**
 * Whether `incoming` may replace `existing`. A history page fetched before a
 * live edit can arrive after it; the edit must win.
 */
function isNewer(incoming: Message, existing: Message): boolean {
  if (existing.deleted) return false;
  if (incoming.deleted) return true;
  if (!existing.edited_at) return true;
  if (!incoming.edited_at) return false;
  return incoming.edited_at >= existing.edited_at;
}

export function newestSeq(log: RoomLog): number {
  return log.messages.length ? log.messages[log.messages.length - 1]!.seq : 0;
}

export function oldestSeq(log: RoomLog): number | null {
  return log.messages.length ? log.messages[0]!.seq : null;
}
