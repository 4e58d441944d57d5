import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { emptyLog } from '../../lib/roomLog';
import { buildRows, type Row } from '../../lib/timeline';
import { offsetsFor, rowAt, visibleRange } from '../../lib/windowing';
import { useChat, useChatClient } from '../app/context';
import { MessageRow, PendingRow } from './MessageRow';

/** Height assumed for a row not measured yet. */
const ESTIMATE = 44;
/** Rendered beyond the viewport on each side, in pixels. */
const OVERSCAN = 800;
/** Start fetching older history this close to the top. */
const LOAD_OLDER_AT = 600;
const BOTTOM_SLACK = 48;

type ListRow = Row | { kind: 'top'; key: string };

interface Props {
  roomId: number;
  label: string;
  canModerate: boolean;
}

/**
 * The timeline, windowed: only rows near the viewport are in the DOM, so a
 * room with 10,000 loaded messages costs the same to render as one with 50.
 *
 * Scroll position is kept explicitly rather than by the browser: at the
 * bottom the view follows new messages; elsewhere the first visible row is
 * the anchor, and after any change (an older page prepended, a row measured)
 * the scroll position is corrected so that row stays where it was.
 */
export function MessageList({ roomId, label, canModerate }: Props) {
  const chat = useChatClient();
  const log = useChat((s) => s.logs[roomId]) ?? emptyLog();
  const me = useChat((s) => s.me);
  const newAfterSeq = useChat((s) => s.newAfterSeq[roomId] ?? null);
  const loadingOlder = useChat((s) => !!s.loadingOlder[roomId]);

  const rows = useMemo<ListRow[]>(
    () => [
      { kind: 'top', key: 'top' },
      ...buildRows(log.messages, log.pending, { newAfterSeq, meId: me.id, meName: me.username }),
    ],
    [log.messages, log.pending, newAfterSeq, me.id, me.username],
  );

  const scroller = useRef<HTMLDivElement>(null);
  const [heights, setHeights] = useState<ReadonlyMap<string, number>>(() => new Map());
  const [resized, setResized] = useState(0);
  const [viewport, setViewport] = useState({ top: 0, height: 800 });
  const atBottom = useRef(true);
  const anchor = useRef<{ key: string; offset: number } | null>(null);

  const offsets = useMemo(() => offsetsFor(rows.map((r) => heights.get(r.key)), ESTIMATE), [rows, heights]);
  const range = visibleRange(offsets, viewport.top, viewport.height, OVERSCAN);
  const latest = useRef({ rows, offsets });
  useLayoutEffect(() => {
    latest.current = { rows, offsets };
  });

  const updateReading = useCallback(() => {
    chat.setReading(atBottom.current && document.visibilityState === 'visible');
  }, [chat]);

  function onScroll() {
    const el = scroller.current;
    if (!el) return;
    const { rows: r, offsets: o } = latest.current;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < BOTTOM_SLACK;
    // Anchor on a message: the top row and day separators keep their index
    // when older rows are prepended, so they cannot show that content moved.
    let i = rowAt(o, el.scrollTop);
    while (i < r.length && r[i]!.kind !== 'message' && r[i]!.kind !== 'pending') i++;
    const row = r[i];
    anchor.current = row ? { key: row.key, offset: o[i]! - el.scrollTop } : null;
    setViewport((v) => (v.top === el.scrollTop && v.height === el.clientHeight ? v : { top: el.scrollTop, height: el.clientHeight }));
    if (el.scrollTop < LOAD_OLDER_AT) void chat.loadOlder(roomId);
    updateReading();
  }

  // Measure the rendered rows: unknown heights were estimates.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    setHeights((known) => {
      let next: Map<string, number> | null = null;
      for (const node of el.querySelectorAll<HTMLElement>('[data-row]')) {
        const key = node.dataset.row!;
        const h = node.offsetHeight;
        if (known.get(key) !== h) {
          next ??= new Map(known);
          next.set(key, h);
        }
      }
      return next ?? known;
    });
  }, [rows, range.start, range.end, resized]);

  // Keep the view in place (or at the bottom) after every layout change.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor.current) {
      const i = rows.findIndex((r) => r.key === anchor.current!.key);
      if (i >= 0) {
        const want = offsets[i]! - anchor.current.offset;
        if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
      }
    }
  }, [rows, offsets]);

  // Wrapping changes with the width: re-measure and keep the window right.
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      if (atBottom.current) el.scrollTop = el.scrollHeight;
      setViewport({ top: el.scrollTop, height: el.clientHeight });
      setResized((n) => n + 1);
    });
    ro.observe(el);
    const onVisibility = () => updateReading();
    document.addEventListener('visibilitychange', onVisibility);
    updateReading();
    return () => {
      ro.disconnect();
      document.removeEventListener('visibilitychange', onVisibility);
      chat.setReading(false);
    };
  }, [chat, updateReading]);

  // A short history may not fill the view: no scroll event would ever ask for more.
  useEffect(() => {
    const el = scroller.current;
    if (el && log.historyLoaded && log.hasOlder && el.scrollHeight <= el.clientHeight + LOAD_OLDER_AT) void chat.loadOlder(roomId);
  }, [chat, roomId, log.historyLoaded, log.hasOlder, log.messages.length]);

  const visible = rows.slice(range.start, range.end);

  return (
    <div
      ref={scroller}
      onScroll={onScroll}
      tabIndex={0}
      role="region"
      aria-label={label}
      data-testid="message-list"
      className="min-h-0 flex-1 overflow-y-auto overscroll-contain"
    >
      <div className="flex min-h-full flex-col justify-end">
        <div style={{ height: range.padTop }} aria-hidden="true" />
        {visible.map((row) => (
          <div key={row.key} data-row={row.key}>
            {renderRow(row)}
          </div>
        ))}
        <div style={{ height: range.padBottom }} aria-hidden="true" />
      </div>
    </div>
  );

  function renderRow(row: ListRow) {
    switch (row.kind) {
      case 'top':
        return (
          <div className="px-4 py-3 text-center text-sm text-muted">
            {!log.historyLoaded || loadingOlder ? 'Loading messages…' : log.hasOlder ? '\u00a0' : 'This is the beginning of the conversation.'}
          </div>
        );
      case 'day':
        return (
          <div className="flex items-center gap-3 px-4 py-2 text-xs font-semibold text-muted" role="separator" aria-label={row.label}>
            <span className="h-px flex-1 bg-line" />
            {row.label}
            <span className="h-px flex-1 bg-line" />
          </div>
        );
      case 'new':
        return (
          <div className="flex items-center gap-3 px-4 py-1 text-xs font-semibold text-danger" role="separator" aria-label="New messages" data-testid="new-messages">
            <span className="h-px flex-1 bg-danger" />
            New messages
            <span className="h-px flex-1 bg-danger" />
          </div>
        );
      case 'message':
        return (
          <MessageRow
            message={row.message}
            header={row.header}
            mine={row.message.author.id === me.id}
            canDelete={canModerate || row.message.author.id === me.id}
          />
        );
      case 'pending':
        return <PendingRow pending={row.pending} header={row.header} meName={me.username} roomId={roomId} />;
    }
  }
}
