#!/usr/bin/env node
/**
 * A small in-memory stand-in for the Banter server, speaking the subset of
 * shared/spec/API.md the web client uses. It exists so the client and its
 * browser tests can be developed before the Rust server is ready:
 *
 *   BANTER_BIN=e2e/mock-server.mjs npm run e2e
 *
 * Same command line as the real binary (`serve`, env BIND and DATA_DIR); state
 * is saved to DATA_DIR/mock-state.json so a restart keeps it. It is no
 * reference implementation: no Argon2, no real JWT signatures, no limits.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const [host, port] = (process.env.BIND ?? '127.0.0.1:8000').split(':');
const dataDir = process.env.DATA_DIR ?? '.';
const stateFile = join(dataDir, 'mock-state.json');
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

const now = () => new Date().toISOString();
let db = existsSync(stateFile)
  ? JSON.parse(readFileSync(stateFile, 'utf8'))
  : { nextId: 1, users: [], rooms: [], members: [], messages: [], events: [], refresh: {}, reads: {} };
let savedAt = 0;
const save = () => {
  writeFileSync(stateFile, JSON.stringify(db));
  savedAt = statSync(stateFile).mtimeMs;
};
/** `user promote` runs as another process: pick up its change to the file. */
const reloadIfChanged = () => {
  if (existsSync(stateFile) && statSync(stateFile).mtimeMs !== savedAt) {
    db = JSON.parse(readFileSync(stateFile, 'utf8'));
    savedAt = statSync(stateFile).mtimeMs;
  }
};

if (process.argv[2] === 'user' && process.argv[3] === 'promote') {
  const u = db.users.find((x) => x.username === process.argv[4]);
  if (!u) process.exit(1);
  u.is_admin = true;
  save();
  process.exit(0);
}
if (process.argv[2] !== 'serve') {
  console.error('usage: mock-server.mjs serve | user promote NAME');
  process.exit(2);
}
const id = () => db.nextId++;

// ---- tokens ------------------------------------------------------------------
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const accessFor = (u) => `${b64({ alg: 'none' })}.${b64({ sub: String(u.id), username: u.username, exp: Math.floor(Date.now() / 1000) + 600 })}.x`;
function userFromAccess(token) {
  try {
    const p = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    if (p.exp * 1000 < Date.now()) return null;
    const u = db.users.find((x) => x.id === Number(p.sub));
    return u && u.is_active ? u : null;
  } catch {
    return null;
  }
}
function pair(u) {
  const refresh = randomUUID();
  db.refresh[refresh] = { user: u.id, used: false };
  save();
  return { access: accessFor(u), refresh };
}
const pubUser = (u, self = false) => ({ id: u.id, username: u.username, is_admin: u.is_admin, created_at: u.created_at, ...(self ? { email: u.email } : {}) });
const ref = (u) => ({ id: u.id, username: u.username });

// ---- rooms -----------------------------------------------------------------------
const member = (room, u) => db.members.find((m) => m.room === room.id && m.user === u.id);
const canRead = (room, u) => !room.is_private || !!member(room, u);
function roomView(room, u) {
  const m = member(room, u);
  const lastRead = db.reads[`${room.id}:${u.id}`] ?? 0;
  const unread = db.messages.filter((x) => x.room_id === room.id && x.seq > lastRead && x.author.id !== u.id && !x.deleted).length;
  return {
    id: room.id, name: room.name, topic: room.topic, is_private: room.is_private, is_direct: room.is_direct,
    created_at: room.created_at, updated_at: room.updated_at,
    member_count: db.members.filter((x) => x.room === room.id).length, last_seq: room.last_seq,
    joined: !!m, role: m ? m.role : null, last_read_seq: lastRead, unread_count: Math.min(1000, unread),
  };
}
function addEvent(room, frame) {
  room.last_seq += 1;
  const event = { ...frame, room_id: room.id, seq: room.last_seq };
  db.events.push(event);
  save();
  broadcast(room.id, event);
  return event;
}
function join_(room, u, role = 'member') {
  if (member(room, u)) return;
  db.members.push({ room: room.id, user: u.id, role, joined_at: now() });
  addEvent(room, { type: 'member_joined', user: ref(u) });
}
function postMessage(room, u, content, clientId) {
  if (clientId) {
    const existing = db.messages.find((m) => m.author.id === u.id && m.client_id === clientId);
    if (existing) return { message: existing, created: false };
  }
  if (!room.is_private) join_(room, u);
  const message = { id: id(), room_id: room.id, seq: room.last_seq + 1, author: ref(u), content, created_at: now(), edited_at: null, deleted: false, client_id: clientId ?? null };
  db.messages.push(message);
  addEvent(room, { type: 'message', message });
  return { message, created: true };
}

// ---- HTTP ----------------------------------------------------------------------------
const err = (status, code, message, fields) => ({ status, body: { error: { code, message, ...(fields ? { fields } : {}) } } });
const ok = (status, body) => ({ status, body });

function route(method, path, body, auth) {
  let m;
  if (method === 'POST' && path === '/auth/register') {
    const fields = {};
    if (!/^[A-Za-z0-9_.-]{3,32}$/.test(body.username ?? '')) fields.username = 'must be 3-32 characters of letters, digits, _ . -';
    else if (db.users.some((u) => u.username.toLowerCase() === body.username.toLowerCase())) fields.username = 'is already taken';
    if (!/^[^@\s]+@[^@\s]+$/.test(body.email ?? '')) fields.email = 'is not a valid email address';
    if ((body.password ?? '').length < 8) fields.password = 'must be at least 8 characters';
    if (Object.keys(fields).length) return err(400, 'validation_failed', 'Some fields are invalid.', fields);
    const u = { id: id(), username: body.username, email: body.email, password: body.password, is_admin: false, is_active: true, created_at: now() };
    db.users.push(u);
    return ok(201, { ...pair(u), user: pubUser(u, true) });
  }
  if (method === 'POST' && path === '/auth/login') {
    const u = db.users.find((x) => x.username.toLowerCase() === String(body.username).toLowerCase());
    if (!u || u.password !== body.password || !u.is_active) return err(401, 'invalid_credentials', 'Wrong username or password.');
    return ok(200, { ...pair(u), user: pubUser(u, true) });
  }
  if (method === 'POST' && path === '/auth/token/refresh') {
    const r = db.refresh[body.refresh];
    if (!r || r.used) return err(401, 'token_revoked', 'This login has ended.');
    r.used = true;
    const u = db.users.find((x) => x.id === r.user);
    return ok(200, pair(u));
  }
  if (method === 'POST' && path === '/auth/logout') {
    if (db.refresh[body.refresh]) db.refresh[body.refresh].used = true;
    save();
    return ok(204);
  }
  if (!auth) return err(401, 'unauthenticated', 'Sign in first.');
  const u = auth;
  if (method === 'GET' && path === '/auth/me') return ok(200, pubUser(u, true));
  if (path === '/chat/rooms' && method === 'GET') return ok(200, db.rooms.filter((r) => !r.is_private || member(r, u)).map((r) => roomView(r, u)));
  if (path === '/chat/rooms' && method === 'POST') {
    const name = String(body.name ?? '').trim();
    if (!name || name.length > 80) return err(400, 'validation_failed', 'Invalid room.', { name: 'must be 1-80 characters' });
    if (db.rooms.some((r) => r.name.toLowerCase() === name.toLowerCase())) return err(409, 'conflict', 'A room with that name exists.', { name: 'is already taken' });
    const room = { id: id(), name, topic: body.topic ?? '', is_private: !!body.is_private, is_direct: false, created_at: now(), updated_at: now(), last_seq: 0 };
    db.rooms.push(room);
    join_(room, u, 'owner');
    return ok(201, roomView(room, u));
  }
  if (path === '/chat/direct' && method === 'POST') {
    const other = db.users.find((x) => x.username.toLowerCase() === String(body.username).toLowerCase());
    if (!other) return err(404, 'not_found', 'No such user.');
    const names = [u.username, other.username].sort((a, b) => a.localeCompare(b));
    let room = db.rooms.find((r) => r.is_direct && r.name === names.join(','));
    if (room) return ok(200, roomView(room, u));
    room = { id: id(), name: names.join(','), topic: '', is_private: true, is_direct: true, created_at: now(), updated_at: now(), last_seq: 0 };
    db.rooms.push(room);
    join_(room, u, 'owner');
    join_(room, other);
    return ok(201, roomView(room, u));
  }
  if ((m = /^\/chat\/rooms\/(\d+)(\/.*)?$/.exec(path))) {
    const room = db.rooms.find((r) => r.id === Number(m[1]));
    if (!room || !canRead(room, u)) return err(404, 'not_found', 'No such room.');
    const rest = m[2] ?? '';
    if (rest === '' && method === 'GET') return ok(200, roomView(room, u));
    if (rest === '' && method === 'DELETE') {
      if (!u.is_admin && member(room, u)?.role !== 'owner') return err(403, 'forbidden', 'Not allowed.');
      addEvent(room, { type: 'room_deleted' });
      db.rooms = db.rooms.filter((r) => r !== room);
      save();
      return ok(204);
    }
    if (rest === '/join' && method === 'POST') {
      if (room.is_private) return err(403, 'forbidden', 'Private room.');
      join_(room, u);
      return ok(200, roomView(room, u));
    }
    if (rest === '/leave' && method === 'POST') {
      if (member(room, u)) {
        db.members = db.members.filter((x) => !(x.room === room.id && x.user === u.id));
        addEvent(room, { type: 'member_left', user: ref(u) });
      }
      return ok(204);
    }
    if (rest === '/members' && method === 'GET') {
      return ok(200, db.members.filter((x) => x.room === room.id).map((x) => ({ user: ref(db.users.find((y) => y.id === x.user)), role: x.role, joined_at: x.joined_at })));
    }
    if (rest === '/members' && method === 'POST') {
      const other = db.users.find((x) => x.username.toLowerCase() === String(body.username).toLowerCase());
      if (!other) return err(404, 'not_found', 'No such user.');
      join_(room, other);
      return ok(201, {});
    }
    if (rest === '/read' && method === 'POST') {
      const key = `${room.id}:${u.id}`;
      if ((db.reads[key] ?? 0) < body.seq) {
        db.reads[key] = body.seq;
        save();
        for (const c of clients) if (c.user?.id === u.id) c.send({ type: 'read', room_id: room.id, seq: body.seq });
      }
      return ok(204);
    }
    if (rest === '/messages' && method === 'GET') {
      const q = new URLSearchParams(body.__query);
      const limit = Math.min(100, Math.max(1, Number(q.get('limit') ?? 50)));
      let list = db.messages.filter((x) => x.room_id === room.id);
      if (q.has('before_seq')) list = list.filter((x) => x.seq < Number(q.get('before_seq'))).slice(-limit);
      else if (q.has('after_seq')) list = list.filter((x) => x.seq > Number(q.get('after_seq'))).slice(0, limit);
      else list = list.slice(-limit);
      return ok(200, list);
    }
    if (rest === '/messages' && method === 'POST') {
      const content = String(body.message ?? '').trim();
      if (!content) return err(400, 'validation_failed', 'Empty message.', { message: 'must not be empty' });
      const r = postMessage(room, u, content, body.client_id);
      return ok(r.created ? 201 : 200, r.message);
    }
    if ((m = /^\/messages\/(\d+)$/.exec(rest))) {
      const msg = db.messages.find((x) => x.id === Number(m[1]) && x.room_id === room.id);
      if (!msg) return err(404, 'not_found', 'No such message.');
      if (method === 'PATCH') {
        if (msg.author.id !== u.id) return err(403, 'forbidden', 'Not yours.');
        msg.content = String(body.message).trim();
        msg.edited_at = now();
        addEvent(room, { type: 'message_edited', message: msg });
        return ok(200, msg);
      }
      if (method === 'DELETE') {
        msg.content = '';
        msg.deleted = true;
        addEvent(room, { type: 'message_deleted', message: msg });
        return ok(204);
      }
    }
  }
  if (path.startsWith('/admin/')) {
    if (!u.is_admin) return err(403, 'forbidden', 'Admins only.');
    if (path === '/admin/users' && method === 'GET') return ok(200, db.users.map((x) => ({ ...pubUser(x, true), is_active: x.is_active })));
    if ((m = /^\/admin\/users\/(\d+)$/.exec(path)) && method === 'PATCH') {
      const target = db.users.find((x) => x.id === Number(m[1]));
      if (!target) return err(404, 'not_found', 'No such user.');
      if (typeof body.is_active === 'boolean') target.is_active = body.is_active;
      if (typeof body.is_admin === 'boolean') target.is_admin = body.is_admin;
      save();
      return ok(200, { ...pubUser(target, true), is_active: target.is_active });
    }
    if (path === '/admin/rooms' && method === 'GET') return ok(200, db.rooms.map((r) => roomView(r, u)));
  }
  return err(404, 'not_found', 'Not found.');
}

const TYPES = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.svg': 'image/svg+xml', '.png': 'image/png' };

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname.replace(/\/$/, '') || '/';
  if (path === '/healthz') return void res.end('ok');
  if (/^\/(auth|chat|admin)(\/|$)/.test(path)) {
    reloadIfChanged();
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body;
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return send(res, err(400, 'invalid_json', 'Bad JSON.'));
      }
      body.__query = url.search;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      send(res, route(req.method, path, body, token ? userFromAccess(token) : null));
    });
    return;
  }
  const file = join(dist, path === '/' ? 'index.html' : path);
  const target = file.startsWith(dist) && existsSync(file) && extname(file) ? file : join(dist, 'index.html');
  if (!existsSync(target)) return void res.writeHead(500).end('run npm run build first');
  res.writeHead(200, { 'Content-Type': TYPES[extname(target)] ?? 'application/octet-stream' });
  res.end(readFileSync(target));
});
function send(res, { status, body }) {
  res.writeHead(status, body ? { 'Content-Type': 'application/json' } : {});
  res.end(body ? JSON.stringify(body) : undefined);
}

// ---- WebSocket (RFC 6455, text frames only) ----------------------------------------------
const clients = new Set();
function broadcast(roomId, frame, except) {
  for (const c of clients) if (c !== except && c.rooms.has(roomId)) c.send(frame);
}
function online(roomId) {
  const seen = new Map();
  for (const c of clients) if (c.rooms.has(roomId) && c.user) seen.set(c.user.id, ref(c.user));
  return [...seen.values()];
}

server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const client = {
    user: null,
    rooms: new Set(),
    send(frame) {
      const data = Buffer.from(JSON.stringify(frame));
      const head = data.length < 126 ? Buffer.from([0x81, data.length]) : data.length < 65536 ? Buffer.from([0x81, 126, data.length >> 8, data.length & 255]) : null;
      if (head && !socket.destroyed) socket.write(Buffer.concat([head, data]));
    },
    close(code) {
      if (!socket.destroyed) socket.end(Buffer.from([0x88, 2, code >> 8, code & 255]));
    },
  };
  const token = new URL(req.url, 'http://x').searchParams.get('token');
  client.user = token ? userFromAccess(token) : null;
  if (!client.user) return void client.close(4001);
  clients.add(client);
  client.send({ type: 'ready', user: pubUser(client.user, true), session_id: randomUUID() });

  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 15;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) return void client.close(1009);
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) return void client.close(1000);
      if (opcode === 1) handle(client, payload.toString());
    }
  });
  const bye = () => {
    if (!clients.delete(client)) return;
    for (const roomId of client.rooms) {
      client.rooms.delete(roomId);
      if (!online(roomId).some((x) => x.id === client.user.id)) broadcast(roomId, { type: 'presence', room_id: roomId, user: ref(client.user), online: false });
    }
  };
  socket.on('close', bye);
  socket.on('error', bye);
});

function handle(client, text) {
  let f;
  try {
    f = JSON.parse(text);
  } catch {
    return client.send({ type: 'error', code: 'invalid_json', message: 'Bad JSON.' });
  }
  const u = client.user;
  const room = db.rooms.find((r) => r.id === f.room_id);
  switch (f.type) {
    case 'ping':
      return client.send({ type: 'pong', nonce: f.nonce });
    case 'subscribe': {
      if (!room || !canRead(room, u)) return client.send({ type: 'error', code: 'not_found', message: 'No such room.', ref: 'subscribe' });
      const wasOnline = online(room.id).some((x) => x.id === u.id);
      if (typeof f.after_seq === 'number') {
        const missed = db.events.filter((e) => e.room_id === room.id && e.seq > f.after_seq);
        if (missed.length >= 1000) client.send({ type: 'resync_required', room_id: room.id });
        else for (const e of missed) client.send(e);
      }
      client.rooms.add(room.id);
      client.send({ type: 'subscribed', room_id: room.id, last_seq: room.last_seq, online: online(room.id) });
      if (!wasOnline) broadcast(room.id, { type: 'presence', room_id: room.id, user: ref(u), online: true }, client);
      return;
    }
    case 'unsubscribe':
      client.rooms.delete(f.room_id);
      return;
    case 'send': {
      if (!room || !canRead(room, u)) return client.send({ type: 'error', code: 'not_found', message: 'No such room.', ref: f.client_id });
      const content = String(f.message ?? '').trim();
      if (!content) return client.send({ type: 'error', code: 'validation_failed', message: 'Empty message.', ref: f.client_id });
      const r = postMessage(room, u, content, f.client_id);
      return client.send({ type: 'ack', client_id: f.client_id, message: r.message });
    }
    case 'typing':
      if (room) broadcast(room.id, { type: 'typing', room_id: room.id, user: ref(u), typing: !!f.typing }, client);
      return;
    default:
      return client.send({ type: 'error', code: 'unknown_type', message: 'Unknown frame type.', ref: f.type });
  }
}

server.listen(Number(port), host, () => console.error(`mock banter listening on ${host}:${port}`));
const stop = () => {
  for (const c of clients) c.close(1001);
  server.close();
  setTimeout(() => process.exit(0), 100).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
