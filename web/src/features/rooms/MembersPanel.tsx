import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, describeError } from '../../lib/errors';
import type { Member, Room } from '../../lib/types';
import { api } from '../../services';
import { useChat } from '../app/context';
import { PresenceDot } from '../presence/PresenceDot';
import { Button } from '../ui/Button';
import { Field } from '../ui/Field';

const EMPTY = {};

export function MembersPanel({ room, onClose }: { room: Room; onClose: () => void }) {
  const epoch = useChat((s) => s.memberEpoch[room.id] ?? 0);
  const online = useChat((s) => s.online[room.id] ?? EMPTY);
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState('');
  const [invitee, setInvitee] = useState('');
  const [inviteError, setInviteError] = useState<string | undefined>();
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    api.members(room.id).then(
      (m) => live && setMembers(m),
      (e) => live && setError(describeError(e)),
    );
    return () => {
      live = false;
    };
  }, [room.id, epoch, reload]);

  const canInvite = room.is_private && !room.is_direct && (room.role === 'owner' || room.role === 'admin');

  async function invite(e: FormEvent) {
    e.preventDefault();
    if (!invitee.trim()) return;
    try {
      await api.invite(room.id, invitee.trim());
      setInvitee('');
      setInviteError(undefined);
      setReload((n) => n + 1);
    } catch (err) {
      setInviteError(err instanceof ApiError && err.status === 404 ? 'No such user.' : err instanceof ApiError ? err.fields.username ?? err.message : describeError(err));
    }
  }

  const sorted = [...(members ?? [])].sort(
    (a, b) => Number(!!online[b.user.id as keyof typeof online]) - Number(!!online[a.user.id as keyof typeof online]) || a.user.username.localeCompare(b.user.username),
  );

  return (
    <aside aria-label="Members" className="flex h-full w-full flex-col border-l border-line bg-surface md:w-64">
      <div className="flex items-center justify-between border-b border-line px-4 py-3">
        <h2 className="font-semibold">Members{members ? ` (${members.length})` : ''}</h2>
        <button type="button" onClick={onClose} aria-label="Close members" className="rounded px-2 text-xl text-muted hover:text-fg">
          ×
        </button>
      </div>
      {canInvite && (
        <form onSubmit={invite} className="flex flex-col gap-2 border-b border-line p-4" noValidate>
          <Field label="Invite by username" value={invitee} onChange={(e) => setInvitee(e.target.value)} error={inviteError} autoCapitalize="none" />
          <Button type="submit" variant="primary">
            Invite
          </Button>
        </form>
      )}
      {error && <p role="alert" className="p-4 text-sm text-danger">{error}</p>}
      <ul className="flex-1 overflow-y-auto py-2">
        {members === null && !error && <li className="px-4 text-sm text-muted">Loading…</li>}
        {sorted.map((m) => (
          <li key={m.user.id} className="flex items-center gap-2 px-4 py-1.5 text-sm">
            <PresenceDot online={m.user.id in online} />
            <span className="min-w-0 flex-1 truncate">{m.user.username}</span>
            {m.role !== 'member' && <span className="text-xs text-muted">{m.role}</span>}
          </li>
        ))}
      </ul>
    </aside>
  );
}
