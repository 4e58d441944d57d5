/** The browser-bound singletons: one session and one API client per tab. */
import { Api } from './lib/api';
import { STORAGE_KEY, Session, browserLock } from './lib/session';

export const session = new Session({
  storage: window.localStorage,
  fetch: (input, init) => window.fetch(input, init),
  lock: browserLock(),
});

export const api = new Api(session, (input, init) => window.fetch(input, init));

// Another tab logged in, out, or rotated the tokens.
window.addEventListener('storage', (e) => {
  if (e.key === STORAGE_KEY || e.key === null) session.emit();
});
