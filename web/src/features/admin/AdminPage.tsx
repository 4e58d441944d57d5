import { useEffect, useState } from 'react';
import { describeError } from '../../lib/errors';
import type { Room, User } from '../../lib/types';
import { api } from '../../services';
import { useChat, useChatClient } from '../app/context';
import { Button } from '../ui/Button';
import { Field } from '../ui/Field';

/** Server administration: users (activate, promote) and rooms (delete). */
export default function AdminPage() {
  const [tab, setTab] = useState<'users' | 'rooms'>('users');
  return (
    <div className="flex min-h-0 flex-1 flex-col overflow-y-auto p-4 md:p-6">
      <h1 className="mb-4 text-2xl font-bold">Administration</h1>
      <div role="tablist" aria-label="Administration" className="mb-4 flex gap-2">
        {(['users', 'rooms'] as const).map((t) => (
          <button
            key={t}
            role="tab"
            type="button"
            aria-selected={tab === t}
            onClick={() => setTab(t)}
            className={`rounded-md px-3 py-1.5 text-sm font-medium ${tab === t ? 'bg-accent text-accent-fg' : 'bg-surface-2'}`}
          >
            {t === 'users' ? 'Users' : 'Rooms'}
          </button>
        ))}
      </div>
      <div role="tabpanel">{tab === 'users' ? <UsersAdmin /> : <RoomsAdmin />}</div>
    </div>
  );
}

function UsersAdmin() {
  const me = useChat((s) => s.me);
  const [users, setUsers] = useState<User[] | null>(null);
  const [query, setQuery] = useState('');
  const [error, setError] = useState('');

  useEffect(() => {
    api.adminUsers().then(setUsers, (e) => setError(describeError(e)));
  }, []);

  async function update(user: User, patch: { is_active?: boolean; is_admin?: boolean }) {
    try {
      const updated = await api.adminUpdateUser(user.id, patch);
      setUsers((list) => list?.map((u) => (u.id === user.id ? { ...u, ...updated } : u)) ?? null);
      setError('');
    } catch (e) {
      setError(describeError(e));
    }
  }

  const q = query.trim().toLowerCase();
  const shown = (users ?? []).filter((u) => !q || u.username.toLowerCase().includes(q) || (u.email ?? '').toLowerCase().includes(q));

  return (
    <div className="flex flex-col gap-3">
      <div className="max-w-sm">
        <Field label="Search users" type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
      </div>
      {error && <p role="alert" className="text-sm text-danger">{error}</p>}
      {users === null && !error && <p className="text-muted">Loading…</p>}
      <div className="overflow-x-auto">
        <table className="w-full min-w-[36rem] text-left text-sm">
          <caption className="sr-only">Users</caption>
          <thead className="border-b border-line text-muted">
            <tr>
              <th scope="col" className="py-2 pr-3">Username</th>
              <th scope="col" className="py-2 pr-3">Email</th>
              <th scope="col" className="py-2 pr-3">Status</th>
              <th scope="col" className="py-2 pr-3">Actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((u) => (
              <tr key={u.id} className="border-b border-line">
                <td className="py-2 pr-3 font-medium">{u.username}</td>
                <td className="py-2 pr-3">{u.email}</td>
                <td className="py-2 pr-3">
                  {u.is_active === false ? 'Deactivated' : 'Active'}
                  {u.is_admin ? ' · Admin' : ''}
                </td>
                <td className="flex flex-wrap gap-2 py-2 pr-3">
                  <Button
                    variant={u.is_active === false ? 'secondary' : 'danger'}
                    disabled={u.id === me.id}
                    onClick={() => void update(u, { is_active: u.is_active === false })}
                    aria-label={`${u.is_active === false ? 'Reactivate' : 'Deactivate'} ${u.username}`}
                  >
                    {u.is_active === false ? 'Reactivate' : 'Deactivate'}
                  </Button>
                  <Button
                    disabled={u.id === me.id}
                    onClick={() => void update(u, { is_admin: !u.is_admin })}
                    aria-label={`${u.is_admin ? 'Demote' : 'Promote'} ${u.username}`}
                  >
                    {u.is_admin ? 'Demote' : 'Make admin'}
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function RoomsAdmin() {
  const chat = useChatClient();
  const [rooms, setRooms] = useState<Room[] | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    api.adminRooms().then(setRooms, (e) => setError(describeError(e)));
  }, []);

  async function remove(room: Room) {
    if (!window.confirm(`Delete ${room.name} and all its messages?`)) return;
    try {
      await api.deleteRoom(room.id);
      setRooms((list) => list?.filter((r) => r.id !== room.id) ?? null);
      void chat.loadRooms();
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <div className="flex flex-col gap-3">
      {error && <p role="alert" className="text-sm text-danger">{error}</p>}
      {rooms === null && !error && <p className="text-muted">Loading…</p>}
      <div className="overflow-x-auto">
        <table className="w-full min-w-[32rem] text-left text-sm">
          <caption className="sr-only">Rooms</caption>
          <thead className="border-b border-line text-muted">
            <tr>
              <th scope="col" className="py-2 pr-3">Name</th>
              <th scope="col" className="py-2 pr-3">Kind</th>
              <th scope="col" className="py-2 pr-3">Members</th>
              <th scope="col" className="py-2 pr-3">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(rooms ?? []).map((r) => (
              <tr key={r.id} className="border-b border-line">
                <td className="py-2 pr-3 font-medium">{r.name}</td>
                <td className="py-2 pr-3">{r.is_direct ? 'Direct' : r.is_private ? 'Private' : 'Public'}</td>
                <td className="py-2 pr-3">{r.member_count}</td>
                <td className="py-2 pr-3">
                  <Button variant="danger" onClick={() => void remove(r)} aria-label={`Delete room ${r.name}`}>
                    Delete
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
