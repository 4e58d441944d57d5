import type { Message, RoomEvent } from './types';

/** Deterministic PRNG (mulberry32) so a failing randomized test can be replayed by seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function msg(seq: number, extra: Partial<Message> = {}): Message {
  return {
    id: seq * 10,
    room_id: 1,
    seq,
    author: { id: 1, username: 'alice' },
    content: `message ${seq}`,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    edited_at: null,
    deleted: false,
    client_id: null,
    ...extra,
  };
}

export function messageEvent(m: Message): RoomEvent {
  return { type: 'message', room_id: m.room_id, seq: m.seq, message: m };
}
