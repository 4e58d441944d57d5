/** How rooms are named and grouped in the sidebar. */
import type { Room } from './types';

/**
 * The server names a direct room "alice,bob"; the reader wants the other
 * person's name. A conversation with oneself shows one's own name.
 */
export function roomTitle(room: Pick<Room, 'name' | 'is_direct'>, me: string): string {
  if (!room.is_direct) return room.name;
  const names = room.name.split(',').map((n) => n.trim()).filter(Boolean);
  const other = names.find((n) => n.toLowerCase() !== me.toLowerCase());
  return other ?? names[0] ?? room.name;
}

export interface SidebarGroups {
  rooms: Room[];
  privateRooms: Room[];
  direct: Room[];
}

export function groupRooms(rooms: readonly Room[], me: string): SidebarGroups {
  const byTitle = (a: Room, b: Room) =>
    roomTitle(a, me).localeCompare(roomTitle(b, me), undefined, { sensitivity: 'base' });
  const joined = rooms.filter((r) => r.joined);
  return {
    rooms: joined.filter((r) => !r.is_private && !r.is_direct).sort(byTitle),
    privateRooms: joined.filter((r) => r.is_private && !r.is_direct).sort(byTitle),
    direct: joined.filter((r) => r.is_direct).sort(byTitle),
  };
}

/** Public rooms the user could join. */
export function browsableRooms(rooms: readonly Room[]): Room[] {
  return rooms
    .filter((r) => !r.joined && !r.is_private && !r.is_direct)
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
}
