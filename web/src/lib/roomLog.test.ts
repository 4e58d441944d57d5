import { describe, expect, it } from 'vitest';
import {
  addPending,
  applyEvent,
  confirmSend,
  emptyLog,
  hasGap,
  mergePage,
  resetWithPage,
  setBaseline,
  type RoomLog,
} from './roomLog';
import type { Message, RoomEvent } from './types';
import { messageEvent, msg, rng } from './testUtil';

function applyAll(log: RoomLog, events: RoomEvent[]): { log: RoomLog; applied: RoomEvent[] } {
  const applied: RoomEvent[] = [];
  for (const e of events) {
    const r = applyEvent(log, e);
    log = r.log;
    applied.push(...r.applied);
  }
  return { log, applied };
}

describe('applyEvent', () => {
  it('applies events in order and drops duplicates', () => {
    const log = setBaseline(emptyLog(), 0);
    const e1 = messageEvent(msg(1));
    const e2 = messageEvent(msg(2));
    const { log: out, applied } = applyAll(log, [e1, e1, e2, e1, e2]);
    expect(out.messages.map((m) => m.seq)).toEqual([1, 2]);
    expect(applied.map((e) => e.seq)).toEqual([1, 2]);
    expect(out.lastEventSeq).toBe(2);
  });

  it('holds events after a gap until the gap fills', () => {
    const log = setBaseline(emptyLog(), 10);
    let r = applyEvent(log, messageEvent(msg(13)));
    expect(r.applied).toEqual([]);
    expect(hasGap(r.log)).toBe(true);
    r = applyEvent(r.log, messageEvent(msg(12)));
    expect(r.applied).toEqual([]);
    r = applyEvent(r.log, messageEvent(msg(11)));
    expect(r.applied.map((e) => e.seq)).toEqual([11, 12, 13]);
    expect(hasGap(r.log)).toBe(false);
  });

  it('ignores events at or below the baseline (replay overlap)', () => {
    const log = setBaseline(emptyLog(), 5);
    const r = applyEvent(log, messageEvent(msg(5)));
    expect(r.applied).toEqual([]);
    expect(r.log.messages).toEqual([]);
  });

  it('applies edits and deletes to loaded messages only', () => {
    let log = mergePage(emptyLog(), [msg(5)], 'latest');
    log = setBaseline(log, 5);
    const edited = msg(5, { content: 'changed', edited_at: '2026-01-02T00:00:00.000Z' });
    log = applyEvent(log, { type: 'message_edited', room_id: 1, seq: 6, message: edited }).log;
    expect(log.messages[0]!.content).toBe('changed');
    const unknown = msg(2, { content: 'x', edited_at: '2026-01-02T00:00:00.000Z' });
    log = applyEvent(log, { type: 'message_edited', room_id: 1, seq: 7, message: unknown }).log;
    expect(log.messages.map((m) => m.seq)).toEqual([5]);
    const tomb = msg(5, { content: '', deleted: true });
    log = applyEvent(log, { type: 'message_deleted', room_id: 1, seq: 8, message: tomb }).log;
    expect(log.messages[0]!.deleted).toBe(true);
    expect(log.lastEventSeq).toBe(8);
  });

  it('member and room events advance the sequence without touching messages', () => {
    const log = setBaseline(emptyLog(), 0);
    const r = applyEvent(log, { type: 'member_joined', room_id: 1, seq: 1, user: { id: 2, username: 'bob' } });
    expect(r.applied).toHaveLength(1);
    expect(r.log.lastEventSeq).toBe(1);
    expect(r.log.messages).toEqual([]);
  });
});

describe('history pages', () => {
  it('merges older pages without duplicates and tracks hasOlder', () => {
    const latest = Array.from({ length: 50 }, (_, i) => msg(51 + i));
    let log = mergePage(emptyLog(), latest, 'latest');
    expect(log.hasOlder).toBe(true);
    const older = Array.from({ length: 30 }, (_, i) => msg(21 + i));
    log = mergePage(log, older, 'older');
    expect(log.hasOlder).toBe(false);
    log = mergePage(log, latest, 'latest');
    expect(log.messages.map((m) => m.seq)).toEqual(Array.from({ length: 80 }, (_, i) => 21 + i));
  });

  it('keeps a live edit when an older snapshot of the same message arrives later', () => {
    let log = setBaseline(mergePage(emptyLog(), [msg(1)], 'latest'), 1);
    const edited = msg(1, { content: 'new', edited_at: '2026-01-05T00:00:00.000Z' });
    log = applyEvent(log, { type: 'message_edited', room_id: 1, seq: 2, message: edited }).log;
    log = mergePage(log, [msg(1)], 'latest');
    expect(log.messages[0]!.content).toBe('new');
  });

  it('resetWithPage keeps pending sends and takes the new baseline', () => {
    let log = addPending(emptyLog(), { client_id: 'c1', content: 'hi', created_at: 'x', status: 'sending' });
    log = mergePage(log, [msg(1), msg(2)], 'latest');
    log = resetWithPage(log, [msg(900)], 950);
    expect(log.messages.map((m) => m.seq)).toEqual([900]);
    expect(log.lastEventSeq).toBe(950);
    expect(log.pending).toHaveLength(1);
  });
});

describe('pending sends', () => {
  it('an ack confirms and the later broadcast does not duplicate', () => {
    let log = setBaseline(mergePage(emptyLog(), [], 'latest'), 0);
    log = addPending(log, { client_id: 'c1', content: 'hi', created_at: 'x', status: 'sending' });
    const stored = msg(1, { client_id: 'c1', content: 'hi' });
    log = confirmSend(log, stored);
    expect(log.pending).toEqual([]);
    log = applyEvent(log, messageEvent(stored)).log;
    expect(log.messages).toHaveLength(1);
    expect(log.lastEventSeq).toBe(1);
  });

  it('a broadcast arriving before the ack also confirms', () => {
    let log = setBaseline(emptyLog(), 0);
    log = addPending(log, { client_id: 'c1', content: 'hi', created_at: 'x', status: 'sending' });
    log = applyEvent(log, messageEvent(msg(1, { client_id: 'c1' }))).log;
    expect(log.pending).toEqual([]);
    log = confirmSend(log, msg(1, { client_id: 'c1' }));
    expect(log.messages).toHaveLength(1);
  });
});

/** Builds a valid event stream 1..n: messages with occasional edits, deletes and joins. */
function randomStream(rand: () => number, n: number): RoomEvent[] {
  const events: RoomEvent[] = [];
  const created: Message[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const r = rand();
    const target = created.length ? created[Math.floor(rand() * created.length)]! : undefined;
    if (target && r < 0.15) {
      const m = { ...target, content: `edit at ${seq}`, edited_at: new Date(Date.UTC(2026, 1, 1, 0, 0, seq)).toISOString() };
      events.push({ type: 'message_edited', room_id: 1, seq, message: m });
    } else if (target && r < 0.22) {
      events.push({ type: 'message_deleted', room_id: 1, seq, message: { ...target, content: '', deleted: true } });
    } else if (r < 0.3) {
      events.push({ type: 'member_joined', room_id: 1, seq, user: { id: seq, username: `u${seq}` } });
    } else {
      const m = msg(seq);
      created.push(m);
      events.push(messageEvent(m));
    }
  }
  return events;
}

function shuffleWithDuplicates(rand: () => number, events: RoomEvent[]): RoomEvent[] {
  const out = [...events];
  for (const e of events) if (rand() < 0.3) out.push(e);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('applyEvent, randomized', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`random order with duplicates yields the ordered result (seed ${seed})`, () => {
      const rand = rng(seed);
      const n = 20 + Math.floor(rand() * 200);
      const stream = randomStream(rand, n);
      const expected = applyAll(setBaseline(emptyLog(), 0), stream).log;

      const { log, applied } = applyAll(setBaseline(emptyLog(), 0), shuffleWithDuplicates(rand, stream));

      expect(applied.map((e) => e.seq)).toEqual(stream.map((e) => e.seq));
      expect(log.messages).toEqual(expected.messages);
      expect(log.lastEventSeq).toBe(n);
      expect(hasGap(log)).toBe(false);
      const seqs = log.messages.map((m) => m.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    });
  }

  it('edits and deletes of messages older than the loaded range never invent them (many seeds)', () => {
    for (let seed = 200; seed < 230; seed++) {
      const rand = rng(seed);
      const stream = randomStream(rand, 120);
      // Opened at `cut` with no history loaded: events about older messages arrive live.
      const cut = Math.floor(rand() * 120);
      const straight = applyAll(setBaseline(emptyLog(), 0), stream).log;
      const { log, applied } = applyAll(setBaseline(emptyLog(), cut), shuffleWithDuplicates(rand, stream));
      expect(applied.map((e) => e.seq)).toEqual(stream.slice(cut).map((e) => e.seq));
      expect(log.messages).toEqual(straight.messages.filter((m) => m.seq > cut));
      expect(log.lastEventSeq).toBe(120);
      expect(hasGap(log)).toBe(false);
    }
  });

  it('a reconnect replay overlapping live events changes nothing (many seeds)', () => {
    for (let seed = 100; seed < 130; seed++) {
      const rand = rng(seed);
      const stream = randomStream(rand, 150);
      const cut = Math.floor(rand() * 150);
      // Seen live up to `cut`, then a replay from a slightly older after_seq.
      const first = applyAll(setBaseline(emptyLog(), 0), stream.slice(0, cut)).log;
      const replayFrom = Math.max(0, cut - Math.floor(rand() * 10));
      const resumed = applyAll(first, stream.slice(replayFrom)).log;
      const straight = applyAll(setBaseline(emptyLog(), 0), stream).log;
      expect(resumed.messages).toEqual(straight.messages);
      expect(resumed.lastEventSeq).toBe(150);
    }
  });
});
