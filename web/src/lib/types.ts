/** Wire types from the Banter contract (shared/spec/API.md), v1. */

export interface User {
  id: number;
  username: string;
  email?: string;
  is_admin: boolean;
  is_active?: boolean;
  created_at: string;
}

export interface UserRef {
  id: number;
  username: string;
}

export type Role = 'owner' | 'admin' | 'member';

export interface Room {
  id: number;
  name: string;
  topic: string;
  is_private: boolean;
  is_direct: boolean;
  created_at: string;
  updated_at: string;
  member_count: number;
  last_seq: number;
  joined: boolean;
  role: Role | null;
  last_read_seq: number;
  unread_count: number;
}

export interface Message {
  id: number;
  room_id: number;
  seq: number;
  author: UserRef;
  content: string;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
  client_id: string | null;
}

export interface Member {
  user: UserRef;
  role: Role;
  joined_at: string;
}

export interface AuthResponse {
  access: string;
  refresh: string;
  user: User;
}

/** Frames that carry a room event: each has the room's event sequence number. */
export type RoomEvent =
  | { type: 'message'; room_id: number; seq: number; message: Message }
  | { type: 'message_edited'; room_id: number; seq: number; message: Message }
  | { type: 'message_deleted'; room_id: number; seq: number; message: Message }
  | { type: 'member_joined'; room_id: number; seq: number; user: UserRef }
  | { type: 'member_left'; room_id: number; seq: number; user: UserRef }
  | { type: 'room_updated'; room_id: number; seq: number; room: Room }
  | { type: 'room_deleted'; room_id: number; seq: number };

export const ROOM_EVENT_TYPES: ReadonlySet<string> = new Set([
  'message',
  'message_edited',
  'message_deleted',
  'member_joined',
  'member_left',
  'room_updated',
  'room_deleted',
]);

export type ServerFrame =
  | RoomEvent
  | { type: 'ready'; user: User; session_id: string }
  | { type: 'subscribed'; room_id: number; last_seq: number; online: UserRef[] }
  | { type: 'ack'; client_id: string; message: Message }
  | { type: 'typing'; room_id: number; user: UserRef; typing: boolean }
  | { type: 'presence'; room_id: number; user: UserRef; online: boolean }
  | { type: 'read'; room_id: number; seq: number }
  | { type: 'resync_required'; room_id: number }
  | { type: 'error'; code: string; message: string; ref?: string }
  | { type: 'pong'; nonce?: string };

export type ClientFrame =
  | { type: 'auth'; token: string }
  | { type: 'subscribe'; room_id: number; after_seq?: number }
  | { type: 'unsubscribe'; room_id: number }
  | { type: 'send'; room_id: number; message: string; client_id: string }
  | { type: 'typing'; room_id: number; typing: boolean }
  | { type: 'ping'; nonce?: string };

export function isRoomEvent(frame: ServerFrame): frame is RoomEvent {
  return ROOM_EVENT_TYPES.has(frame.type);
}
