import { useState } from 'react';
import { describeError } from '../../lib/errors';
import { roomTitle } from '../../lib/rooms';
import { useChat, useChatClient, useNavigate } from '../app/context';
import { Composer } from '../composer/Composer';
import { MessageList } from '../messages/MessageList';
import { TypingIndicator } from '../presence/TypingIndicator';
import { Button } from '../ui/Button';
import { LockIcon } from '../ui/LockIcon';
import { MembersPanel } from './MembersPanel';

export function RoomView({ roomId }: { roomId: number }) {
  const chat = useChatClient();
  const navigate = useNavigate();
  const room = useChat((s) => s.rooms[roomId]);
  const me = useChat((s) => s.me);
  const [showMembers, setShowMembers] = useState(false);

  if (!room) {
    return <p className="p-6 text-muted">Loading room…</p>;
  }

  const title = roomTitle(room, me.username);
  const display = room.is_direct ? `@${title}` : `#${title}`;
  const canModerate = me.is_admin || room.role === 'owner' || room.role === 'admin';

  async function leave() {
    if (!window.confirm(`Leave ${display}?`)) return;
    try {
      await chat.leaveRoom(roomId);
      navigate({ name: 'home' });
    } catch (e) {
      chat.notify(describeError(e));
    }
  }

  async function join() {
    try {
      await chat.joinRoom(roomId);
    } catch (e) {
      chat.notify(describeError(e));
    }
  }

  return (
    <div className="flex min-h-0 flex-1">
      <section aria-label={display} className="flex min-w-0 flex-1 flex-col">
        <header className="flex items-center gap-3 border-b border-line px-4 py-2">
          <div className="min-w-0 flex-1">
            <h1 className="truncate text-lg font-semibold">
              {room.is_private && !room.is_direct && (
                <span title="Private room">
                  <LockIcon className="mr-1 align-baseline text-muted" />
                  <span className="sr-only">Private room </span>
                </span>
              )}
              {display}
            </h1>
            {room.topic && <p className="truncate text-sm text-muted">{room.topic}</p>}
          </div>
          {!room.joined && !room.is_private && (
            <Button variant="primary" onClick={() => void join()}>
              Join
            </Button>
          )}
          <Button onClick={() => setShowMembers((v) => !v)} aria-expanded={showMembers} aria-controls="members-panel">
            Members<span className="hidden sm:inline">&nbsp;({room.member_count})</span>
          </Button>
          {room.joined && (
            <Button variant="ghost" onClick={() => void leave()}>
              Leave
            </Button>
          )}
        </header>
        <MessageList roomId={roomId} label={`Messages in ${display}`} canModerate={canModerate} />
        <TypingIndicator roomId={roomId} />
        <Composer roomId={roomId} label={`Message ${display}`} />
      </section>
      {showMembers && (
        <div id="members-panel" className="fixed inset-0 z-40 md:static md:inset-auto md:z-auto">
          <MembersPanel room={room} onClose={() => setShowMembers(false)} />
        </div>
      )}
    </div>
  );
}
