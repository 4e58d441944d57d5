import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, describeError, fieldErrors } from '../../lib/errors';
import { browsableRooms } from '../../lib/rooms';
import type { Room } from '../../lib/types';
import { useChat, useChatClient } from '../app/context';
import { Button } from '../ui/Button';
import { Dialog } from '../ui/Dialog';
import { Field } from '../ui/Field';

interface DialogProps {
  open: boolean;
  onClose: () => void;
  onOpen: (room: Room) => void;
}

export function BrowseRoomsDialog({ open, onClose, onOpen }: DialogProps) {
  const chat = useChatClient();
  const rooms = useChat((s) => s.rooms);
  const [filter, setFilter] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    if (open) chat.loadRooms().catch((e) => setError(describeError(e)));
  }, [open, chat]);
  const list = browsableRooms(Object.values(rooms)).filter((r) =>
    `${r.name} ${r.topic}`.toLowerCase().includes(filter.trim().toLowerCase()),
  );

  async function join(room: Room) {
    try {
      await chat.joinRoom(room.id);
      onClose();
      onOpen(room);
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <Dialog title="Browse public rooms" open={open} onClose={onClose}>
      <Field label="Filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
      {error && <p role="alert" className="text-sm text-danger">{error}</p>}
      <ul className="max-h-80 divide-y divide-line overflow-y-auto">
        {list.length === 0 && <li className="py-3 text-sm text-muted">No public rooms to join.</li>}
        {list.map((r) => (
          <li key={r.id} className="flex items-center gap-3 py-2">
            <div className="min-w-0 flex-1">
              <div className="truncate font-medium"># {r.name}</div>
              <div className="truncate text-sm text-muted">
                {r.member_count} {r.member_count === 1 ? 'member' : 'members'}
                {r.topic ? ` · ${r.topic}` : ''}
              </div>
            </div>
            <Button
              onClick={() => {
                onClose();
                onOpen(r);
              }}
            >
              View
            </Button>
            <Button variant="primary" onClick={() => void join(r)} aria-label={`Join ${r.name}`}>
              Join
            </Button>
          </li>
        ))}
      </ul>
    </Dialog>
  );
}

export function CreateRoomDialog({ open, onClose, onOpen }: DialogProps) {
  const chat = useChatClient();
  const [name, setName] = useState('');
  const [topic, setTopic] = useState('');
  const [isPrivate, setPrivate] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!name.trim()) {
      setErrors({ name: 'Enter a name.' });
      return;
    }
    setBusy(true);
    try {
      const room = await chat.createRoom(name.trim(), topic.trim(), isPrivate);
      setName('');
      setTopic('');
      setPrivate(false);
      setErrors({});
      onClose();
      onOpen(room);
    } catch (err) {
      setErrors(err instanceof ApiError ? { ...fieldErrors(err, ['name', 'topic']), form: err.message } : { form: describeError(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title="Create a room" open={open} onClose={onClose}>
      <form onSubmit={submit} noValidate className="flex flex-col gap-3">
        <Field label="Name" value={name} maxLength={80} onChange={(e) => setName(e.target.value)} error={errors.name} required />
        <Field label="Topic (optional)" value={topic} maxLength={500} onChange={(e) => setTopic(e.target.value)} error={errors.topic} />
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={isPrivate} onChange={(e) => setPrivate(e.target.checked)} />
          Private: only invited members can see it
        </label>
        {errors.form && <p role="alert" className="text-sm text-danger">{errors.form}</p>}
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy}>
            Create
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

export function DirectDialog({ open, onClose, onOpen }: DialogProps) {
  const chat = useChatClient();
  const [username, setUsername] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!username.trim()) {
      setErrors({ username: 'Enter a username.' });
      return;
    }
    setBusy(true);
    try {
      const room = await chat.startDirect(username.trim());
      setUsername('');
      setErrors({});
      onClose();
      onOpen(room);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setErrors({ username: 'No such user.' });
      else setErrors(err instanceof ApiError ? { ...err.fields, form: err.message } : { form: describeError(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog title="Start a direct conversation" open={open} onClose={onClose}>
      <form onSubmit={submit} noValidate className="flex flex-col gap-3">
        <Field label="Username" value={username} autoCapitalize="none" onChange={(e) => setUsername(e.target.value)} error={errors.username} required />
        {errors.form && <p role="alert" className="text-sm text-danger">{errors.form}</p>}
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy}>
            Start
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
