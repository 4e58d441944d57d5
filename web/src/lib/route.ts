/** The client's few URLs. The server answers every unknown path with index.html. */
export type Route = { name: 'home' } | { name: 'room'; roomId: number } | { name: 'admin' };

export function parseRoute(pathname: string): Route {
  const room = /^\/rooms\/(\d+)\/?$/.exec(pathname);
  if (room) return { name: 'room', roomId: Number(room[1]) };
  if (/^\/admin\/?$/.test(pathname)) return { name: 'admin' };
  return { name: 'home' };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'room':
      return `/rooms/${route.roomId}`;
    case 'admin':
      return '/admin';
    default:
      return '/';
  }
}
