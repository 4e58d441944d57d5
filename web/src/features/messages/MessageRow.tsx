import { memo, useState, type KeyboardEvent } from 'react';
import { describeError } from '../../lib/errors';
import type { PendingMessage } from '../../lib/roomLog';
import { formatTime } from '../../lib/timeline';
import type { Message } from '../../lib/types';
import { useChatClient } from '../app/context';
import { MessageText } from './MessageText';

interface MessageRowProps {
  message: Message;
  header: boolean;
  mine: boolean;
  canDelete: boolean;
}

export const MessageRow = memo(function MessageRow({ message, header, mine, canDelete }: MessageRowProps) {
  const chat = useChatClient();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  const [error, setError] = useState('');
  const time = formatTime(message.created_at);

  async function save() {
    try {
      await chat.editMessage(message, draft);
      setEditing(false);
      setError('');
    } catch (e) {
      setError(describeError(e));
    }
  }

  async function remove() {
    if (!window.confirm('Delete this message?')) return;
    try {
      await chat.deleteMessage(message);
    } catch (e) {
      chat.notify(describeError(e));
    }
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void save();
    } else if (e.key === 'Escape') {
      setEditing(false);
    }
  }

  return (
    // tabIndex -1: a tap focuses the row, which reveals its actions on touch screens.
    <div
      tabIndex={-1}
      className={`group relative px-4 outline-none hover:bg-surface focus-within:bg-surface ${header ? 'pt-2' : ''} pb-0.5`}
      data-seq={message.seq}
      data-testid="message"
    >
      {header && (
        <div className="flex items-baseline gap-2">
          <span className="font-semibold">{message.author.username}</span>
          <time dateTime={message.created_at} className="text-xs text-muted" title={new Date(message.created_at).toLocaleString()}>
            {time}
          </time>
        </div>
      )}
      {!header && <span className="sr-only">{message.author.username}, {time}: </span>}
      {message.deleted ? (
        <p className="italic text-muted">This message was deleted.</p>
      ) : editing ? (
        <div className="flex flex-col gap-1 py-1">
          <label className="sr-only" htmlFor={`edit-${message.seq}`}>
            Edit message
          </label>
          <textarea
            id={`edit-${message.seq}`}
            autoFocus
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKey}
            rows={Math.min(8, draft.split('\n').length)}
            className="w-full resize-none rounded-md border border-line bg-bg p-2"
          />
          <div className="text-xs text-muted">
            Enter to save · Escape to cancel
            {error && <span className="ml-2 text-danger" role="alert">{error}</span>}
          </div>
        </div>
      ) : (
        <div className="flex items-end gap-2">
          <div className="min-w-0 flex-1">
            <MessageText text={message.content} />
          </div>
          {message.edited_at && <span className="pb-0.5 text-xs text-muted">(edited)</span>}
        </div>
      )}
      {!message.deleted && !editing && (mine || canDelete) && (
        <div className="pointer-events-none absolute -top-3 right-3 z-10 flex gap-1 rounded-md border border-line bg-bg opacity-0 shadow-sm group-focus-within:pointer-events-auto group-focus-within:opacity-100 group-hover:pointer-events-auto group-hover:opacity-100">
          {mine && (
            <button
              type="button"
              className="px-2 py-0.5 text-xs hover:bg-surface-2"
              onClick={() => {
                setDraft(message.content);
                setEditing(true);
              }}
              aria-label={`Edit message from ${time}`}
            >
              Edit
            </button>
          )}
          <button type="button" className="px-2 py-0.5 text-xs text-danger hover:bg-surface-2" onClick={() => void remove()} aria-label={`Delete message from ${time}`}>
            Delete
          </button>
        </div>
      )}
    </div>
  );
});

export const PendingRow = memo(function PendingRow({
  pending,
  header,
  meName,
  roomId,
}: {
  pending: PendingMessage;
  header: boolean;
  meName: string;
  roomId: number;
}) {
  const chat = useChatClient();
  return (
    <div className={`px-4 pb-0.5 ${header ? 'pt-2' : ''}`} data-testid="pending" data-status={pending.status}>
      {header && (
        <div className="flex items-baseline gap-2">
          <span className="font-semibold">{meName}</span>
        </div>
      )}
      <div className="opacity-70">
        <MessageText text={pending.content} />
      </div>
      {pending.status === 'sending' ? (
        <span className="text-xs text-muted">Sending…</span>
      ) : (
        <span className="text-xs text-danger" role="alert">
          Not sent.{' '}
          <button type="button" className="underline" onClick={() => chat.retry(roomId, pending.client_id)}>
            Retry
          </button>{' '}
          ·{' '}
          <button type="button" className="underline" onClick={() => chat.discard(roomId, pending.client_id)}>
            Discard
          </button>
        </span>
      )}
    </div>
  );
});
