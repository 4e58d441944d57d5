import { useState } from 'react';
import { groupRooms, roomTitle } from '../../lib/rooms';
import type { Route } from '../../lib/route';
import type { Room, User } from '../../lib/types';
import { api } from '../../services';
import { useChat } from '../app/context';
import { PresenceDot } from '../presence/PresenceDot';
import { LockIcon } from '../ui/LockIcon';
import { BrowseRoomsDialog, CreateRoomDialog, DirectDialog } from './RoomDialogs';

type Open = 'browse' | 'create' | 'direct' | null;

interface SidebarProps {
  me: User;
  onNavigate: (route: Route) => void;
  onClose: () => void;
}

export function Sidebar({ me, onNavigate, onClose }: SidebarProps) {
  const rooms = useChat((s) => s.rooms);
  const activeRoomId = useChat((s) => s.activeRoomId);
  const [open, setOpen] = useState<Open>(null);
  const groups = groupRooms(Object.values(rooms), me.username);
  const openRoom = (room: Room) => onNavigate({ name: 'room', roomId: room.id });

  return (
    <nav aria-label="Rooms" className="flex h-full flex-col border-r border-line bg-surface">
      <div className="flex items-center justify-between border-b border-line px-4 py-3">
        <span className="text-lg font-bold">Banter</span>
        <button type="button" onClick={onClose} aria-label="Close navigation" className="rounded px-2 text-xl text-muted hover:text-fg md:hidden">
          ×
        </button>
      </div>
      <div className="flex-1 overflow-y-auto py-2">
        <Section title="Rooms" action={{ label: 'Create a room', onClick: () => setOpen('create') }}>
          {groups.rooms.map((r) => (
            <RoomLink key={r.id} room={r} me={me} active={r.id === activeRoomId} onOpen={openRoom} />
          ))}
          <li>
            <button type="button" onClick={() => setOpen('browse')} className="w-full px-4 py-1.5 text-left text-sm text-muted hover:bg-surface-2 hover:text-fg">
              Browse public rooms…
            </button>
          </li>
        </Section>
        <Section title="Private rooms" action={{ label: 'Create a private room', onClick: () => setOpen('create') }}>
          {groups.privateRooms.map((r) => (
            <RoomLink key={r.id} room={r} me={me} active={r.id === activeRoomId} onOpen={openRoom} />
          ))}
          {groups.privateRooms.length === 0 && <li className="px-4 py-1 text-sm text-muted">None yet</li>}
        </Section>
        <Section title="Direct messages" action={{ label: 'Start a direct conversation', onClick: () => setOpen('direct') }}>
          {groups.direct.map((r) => (
            <RoomLink key={r.id} room={r} me={me} active={r.id === activeRoomId} onOpen={openRoom} />
          ))}
          {groups.direct.length === 0 && <li className="px-4 py-1 text-sm text-muted">None yet</li>}
        </Section>
      </div>
      <div className="flex items-center gap-2 border-t border-line px-4 py-3 text-sm">
        <span className="min-w-0 flex-1 truncate" title={me.username}>
          <span className="sr-only">Signed in as </span>
          <strong>{me.username}</strong>
        </span>
        {me.is_admin && (
          <a
            href="/manage"
            onClick={(e) => {
              e.preventDefault();
              onNavigate({ name: 'admin' });
            }}
            className="text-link hover:underline"
          >
            Admin
          </a>
        )}
        <button type="button" onClick={() => void api.logout()} className="text-link hover:underline">
          Log out
        </button>
      </div>
      <BrowseRoomsDialog open={open === 'browse'} onClose={() => setOpen(null)} onOpen={openRoom} />
      <CreateRoomDialog open={open === 'create'} onClose={() => setOpen(null)} onOpen={openRoom} />
      <DirectDialog open={open === 'direct'} onClose={() => setOpen(null)} onOpen={openRoom} />
    </nav>
  );
}

function Section({
  title,
  action,
  children,
}: {
  title: string;
  action: { label: string; onClick: () => void };
  children: React.ReactNode;
}) {
  const id = `section-${title.replace(/\s+/g, '-').toLowerCase()}`;
  return (
    <section aria-labelledby={id} className="mb-3">
      <div className="flex items-center justify-between px-4 py-1">
        <h2 id={id} className="text-xs font-semibold uppercase tracking-wide text-muted">
          {title}
        </h2>
        <button type="button" onClick={action.onClick} aria-label={action.label} title={action.label} className="rounded px-1.5 text-lg leading-none text-muted hover:bg-surface-2 hover:text-fg">
          +
        </button>
      </div>
      <ul>{children}</ul>
    </section>
  );
}

function RoomLink({ room, me, active, onOpen }: { room: Room; me: User; active: boolean; onOpen: (r: Room) => void }) {
  const title = roomTitle(room, me.username);
  const otherOnline = useChat((s) => {
    if (!room.is_direct) return false;
    const online = s.online[room.id];
    return !!online && Object.keys(online).some((id) => Number(id) !== me.id);
  });
  const unread = room.unread_count;
  return (
    <li>
      <a
        href={`/rooms/${room.id}`}
        aria-current={active ? 'page' : undefined}
        onClick={(e) => {
          e.preventDefault();
          onOpen(room);
        }}
        className={`flex items-center gap-2 px-4 py-1.5 text-sm hover:bg-surface-2 ${
          active ? 'bg-surface-2 font-semibold' : unread > 0 ? 'font-semibold' : ''
        }`}
      >
        {room.is_direct ? (
          <PresenceDot online={otherOnline} />
        ) : (
          <span aria-hidden="true" className="w-2.5 text-muted">
            {room.is_private ? <LockIcon /> : '#'}
          </span>
        )}
        <span className="min-w-0 flex-1 truncate">{title}</span>
        {unread > 0 && (
          <span className="rounded-full bg-accent px-1.5 text-xs font-semibold text-accent-fg" data-testid="unread">
            {unread >= 1000 ? '999+' : unread}
            <span className="sr-only"> unread</span>
          </span>
        )}
      </a>
    </li>
  );
}
