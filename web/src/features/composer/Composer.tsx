import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useChatClient } from '../app/context';

const MAX_CHARS = 4000;
/** Stop announcing "typing" after this long without a keystroke. */
const TYPING_IDLE_MS = 3000;

/** Enter sends, Shift+Enter starts a new line. */
export function Composer({ roomId, label }: { roomId: number; label: string }) {
  const chat = useChatClient();
  const [text, setText] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);
  const idle = useRef<ReturnType<typeof setTimeout> | null>(null);

  useEffect(() => {
    area.current?.focus({ preventScroll: true });
    return () => {
      if (idle.current) clearTimeout(idle.current);
    };
  }, [roomId]);

  // Grow with the text, up to a limit.
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 200)}px`;
  }, [text]);

  function change(value: string) {
    setText(value);
    if (idle.current) clearTimeout(idle.current);
    if (value.trim()) {
      chat.setTyping(roomId, true);
      idle.current = setTimeout(() => chat.setTyping(roomId, false), TYPING_IDLE_MS);
    } else {
      chat.setTyping(roomId, false);
    }
  }

  function send() {
    if (!text.trim() || [...text.trim()].length > MAX_CHARS) return;
    if (idle.current) clearTimeout(idle.current);
    chat.send(roomId, text);
    setText('');
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  }

  const length = [...text].length;
  return (
    <form
      className="flex items-end gap-2 border-t border-line px-3 pt-2 pb-[max(0.5rem,env(safe-area-inset-bottom))]"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <label htmlFor="composer" className="sr-only">
        {label}
      </label>
      <textarea
        id="composer"
        ref={area}
        rows={1}
        value={text}
        placeholder={label}
        onChange={(e) => change(e.target.value)}
        onKeyDown={onKeyDown}
        onBlur={() => chat.setTyping(roomId, false)}
        aria-describedby="composer-help"
        className="max-h-[200px] min-h-[2.5rem] flex-1 resize-none rounded-lg border border-line bg-bg px-3 py-2 outline-none focus:border-accent"
      />
      <button type="submit" disabled={!text.trim() || length > MAX_CHARS} className="rounded-lg bg-accent px-4 py-2 font-medium text-accent-fg disabled:opacity-50">
        Send
      </button>
      <span id="composer-help" className="sr-only">
        Enter sends, Shift+Enter adds a new line.
      </span>
      {length > MAX_CHARS - 500 && (
        <span className={`self-center text-xs ${length > MAX_CHARS ? 'text-danger' : 'text-muted'}`} aria-live="polite">
          {length}/{MAX_CHARS}
        </span>
      )}
    </form>
  );
}
