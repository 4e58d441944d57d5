/**
 * Reconnect delays: exponential growth with jitter, so a server restart is not
 * met by every client reconnecting in the same millisecond.
 */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  random?: () => number;
}

/** Delay before attempt number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 500;
  const max = opts.maxMs ?? 30_000;
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  // "Equal jitter": never less than half the ceiling, so delays still grow.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
