import { useChat } from '../app/context';

const EMPTY = {};

export function TypingIndicator({ roomId }: { roomId: number }) {
  const typing = useChat((s) => s.typing[roomId] ?? EMPTY);
  const names = Object.values(typing);
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  return (
    <div className="h-5 px-4 text-xs text-muted" data-testid="typing" aria-live="polite">
      {text}
    </div>
  );
}
