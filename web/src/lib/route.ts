/**
 * The client's few URLs. The server answers unknown paths with index.html,
 * except under its API prefixes (/auth, /chat, /admin, /ws): hence /manage,
 * not /admin, for the administration page.
 */
export type Route = { name: 'home' } | { name: 'room'; roomId: number } | { name: 'admin' };

export function parseRoute(pathname: string): Route {
  const room = /^\/rooms\/(\d+)\/?$/.exec(pathname);
  if (room) return { name: 'room', roomId: Number(room[1]) };
  if (/^\/manage\/?$/.test(pathname)) return { name: 'admin' };
  return { name: 'home' };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'room':
      return `/rooms/${route.roomId}`;
    case 'admin':
      return '/manage';
    default:
      return '/';
  }
}
