/**
 * Turns a room's messages into display rows: day separators, author groups
 * (same author within a few minutes shares one header), the "new messages"
 * line, and pending sends at the end.
 */
import type { PendingMessage } from './roomLog';
import type { Message } from './types';

export const GROUP_WINDOW_MS = 5 * 60 * 1000;

export type Row =
  | { kind: 'day'; key: string; label: string }
  | { kind: 'new'; key: string }
  | { kind: 'message'; key: string; message: Message; header: boolean }
  | { kind: 'pending'; key: string; pending: PendingMessage; header: boolean };

export interface TimelineOptions {
  /** Show the "new messages" line before the first message by someone else after this seq. */
  newAfterSeq: number | null;
  meId: number;
  meName: string;
  dayLabel?: (date: Date) => string;
}

export function buildRows(messages: readonly Message[], pending: readonly PendingMessage[], opts: TimelineOptions): Row[] {
  const rows: Row[] = [];
  const dayLabel = opts.dayLabel ?? defaultDayLabel;
  let prevDay = '';
  let prevAuthor: number | null = null;
  let prevTime = 0;
  let newPlaced = false;

  const place = (authorId: number, iso: string): boolean => {
    const date = new Date(iso);
    const day = dayKey(date);
    let header = authorId !== prevAuthor || date.getTime() - prevTime > GROUP_WINDOW_MS;
    if (day !== prevDay) {
      rows.push({ kind: 'day', key: `day-${day}`, label: dayLabel(date) });
      prevDay = day;
      header = true;
    }
    prevAuthor = authorId;
    prevTime = date.getTime();
    return header;
  };

  for (const m of messages) {
    if (
      !newPlaced &&
      opts.newAfterSeq !== null &&
      m.seq > opts.newAfterSeq &&
      m.author.id !== opts.meId &&
      !m.deleted
    ) {
      rows.push({ kind: 'new', key: 'new-line' });
      newPlaced = true;
      prevAuthor = null;
    }
    const header = place(m.author.id, m.created_at);
    rows.push({ kind: 'message', key: `m-${m.seq}`, message: m, header });
  }
  for (const p of pending) {
    const header = place(opts.meId, p.created_at);
    rows.push({ kind: 'pending', key: `p-${p.client_id}`, pending: p, header });
  }
  return rows;
}

function dayKey(d: Date): string {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function defaultDayLabel(d: Date): string {
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
