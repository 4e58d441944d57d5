/**
 * A minimal observable state container: React reads it with
 * useSyncExternalStore, plain TypeScript updates it. This is all the state
 * library the client needs.
 */
export class Store<T> {
  private state: T;
  private readonly listeners = new Set<() => void>();

  constructor(initial: T) {
    this.state = initial;
  }

  get = (): T => this.state;

  set(update: Partial<T> | ((state: T) => T)): void {
    const next = typeof update === 'function' ? update(this.state) : { ...this.state, ...update };
    if (next === this.state) return;
    this.state = next;
    for (const l of this.listeners) l();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}
