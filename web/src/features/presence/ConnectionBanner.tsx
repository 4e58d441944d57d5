import { useChat } from '../app/context';

/** Visible whenever the live connection is down after having been up. */
export function ConnectionBanner() {
  const status = useChat((s) => s.status);
  if (status === 'open' || status === 'stopped') return null;
  const text = status === 'reconnecting' ? 'Connection lost. Reconnecting…' : 'Connecting…';
  return (
    <div role="status" data-testid="connection-status" data-status={status} className="bg-highlight px-4 py-1.5 text-center text-sm">
      {text}
    </div>
  );
}
