export function PresenceDot({ online }: { online: boolean }) {
  return (
    <span
      role="img"
      aria-label={online ? 'online' : 'offline'}
      className={`inline-block h-2.5 w-2.5 shrink-0 rounded-full ${online ? 'bg-online' : 'border border-muted'}`}
    />
  );
}
