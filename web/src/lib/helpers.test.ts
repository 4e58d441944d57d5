import { describe, expect, it } from 'vitest';
import { browsableRooms, groupRooms, roomTitle } from './rooms';
import { parseRoute, routePath } from './route';
import { linkify } from './text';
import { buildRows } from './timeline';
import { msg } from './testUtil';
import { offsetsFor, rowAt, visibleRange } from './windowing';
import type { Room } from './types';

describe('linkify', () => {
  it('finds http(s) links and leaves the rest as text', () => {
    expect(linkify('see https://example.com/a?b=1, ok')).toEqual([
      { kind: 'text', text: 'see ' },
      { kind: 'link', text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
      { kind: 'text', text: ', ok' },
    ]);
  });

  it('keeps balanced parentheses and never links other schemes', () => {
    expect(linkify('(https://en.wikipedia.org/wiki/Foo_(bar))')[1]).toMatchObject({
      href: 'https://en.wikipedia.org/wiki/Foo_(bar)',
    });
    expect(linkify('javascript:alert(1) <script>alert(1)</script>')).toEqual([
      { kind: 'text', text: 'javascript:alert(1) <script>alert(1)</script>' },
    ]);
  });
});

describe('rooms', () => {
  const base: Room = {
    id: 1, name: 'x', topic: '', is_private: false, is_direct: false, created_at: '', updated_at: '',
    member_count: 1, last_seq: 0, joined: true, role: 'member', last_read_seq: 0, unread_count: 0,
  };
  it('names direct rooms after the other person', () => {
    expect(roomTitle({ name: 'alice,bob', is_direct: true }, 'Alice')).toBe('bob');
    expect(roomTitle({ name: 'alice,bob', is_direct: true }, 'bob')).toBe('alice');
    expect(roomTitle({ name: 'general', is_direct: false }, 'bob')).toBe('general');
  });
  it('groups joined rooms and lists joinable ones', () => {
    const rooms = [
      { ...base, id: 1, name: 'b' },
      { ...base, id: 2, name: 'A' },
      { ...base, id: 3, name: 'secret', is_private: true },
      { ...base, id: 4, name: 'alice,zed', is_direct: true, is_private: true },
      { ...base, id: 5, name: 'open', joined: false },
    ];
    const g = groupRooms(rooms, 'alice');
    expect(g.rooms.map((r) => r.id)).toEqual([2, 1]);
    expect(g.privateRooms.map((r) => r.id)).toEqual([3]);
    expect(g.direct.map((r) => r.id)).toEqual([4]);
    expect(browsableRooms(rooms).map((r) => r.id)).toEqual([5]);
  });
});

describe('buildRows', () => {
  const alice = { id: 1, username: 'alice' };
  const bob = { id: 2, username: 'bob' };
  const at = (min: number) => new Date(Date.UTC(2026, 0, 1, 12, min)).toISOString();
  it('groups by author and time and places the new-messages line', () => {
    const rows = buildRows(
      [
        msg(1, { author: alice, created_at: at(0) }),
        msg(2, { author: alice, created_at: at(1) }),
        msg(3, { author: bob, created_at: at(2) }),
        msg(4, { author: bob, created_at: at(20) }),
      ],
      [{ client_id: 'c', content: 'x', created_at: at(21), status: 'sending' }],
      { newAfterSeq: 2, meId: 1, meName: 'alice', dayLabel: () => 'day' },
    );
    expect(rows.map((r) => (r.kind === 'message' || r.kind === 'pending' ? `${r.kind}:${r.header}` : r.kind))).toEqual([
      'day', 'message:true', 'message:false', 'new', 'message:true', 'message:true', 'pending:true',
    ]);
  });
});

describe('windowing', () => {
  it('renders only rows near the viewport', () => {
    const heights = Array.from({ length: 10_000 }, (_, i) => (i % 2 ? 40 : undefined));
    const offsets = offsetsFor(heights, 60);
    expect(offsets[10_000]).toBe(5000 * 40 + 5000 * 60);
    const r = visibleRange(offsets, 250_000, 800, 400);
    expect(r.end - r.start).toBeLessThan(50);
    expect(r.padTop + (offsets[r.end]! - offsets[r.start]!) + r.padBottom).toBe(r.total);
    expect(offsets[r.start]!).toBeLessThanOrEqual(250_000 - 400);
  });
  it('handles the edges', () => {
    expect(visibleRange(offsetsFor([], 50), 0, 500, 100)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0, total: 0 });
    const offsets = offsetsFor([10, 10, 10], 50);
    expect(rowAt(offsets, -5)).toBe(0);
    expect(rowAt(offsets, 1000)).toBe(2);
    expect(visibleRange(offsets, 0, 500, 0)).toMatchObject({ start: 0, end: 3 });
  });
});

describe('routes', () => {
  it('round-trips', () => {
    expect(parseRoute('/rooms/42')).toEqual({ name: 'room', roomId: 42 });
    expect(parseRoute('/manage/')).toEqual({ name: 'admin' });
    expect(parseRoute('/admin')).toEqual({ name: 'home' });
    expect(routePath({ name: 'admin' })).toBe('/manage');
    expect(parseRoute('/whatever')).toEqual({ name: 'home' });
    expect(routePath({ name: 'room', roomId: 7 })).toBe('/rooms/7');
  });
});
