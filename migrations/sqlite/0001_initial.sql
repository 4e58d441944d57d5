-- Banter schema v1 (SQLite). Times are milliseconds since the Unix epoch (UTC).
-- `*_key` columns hold the lowercased form that case-insensitive uniqueness is enforced on.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    INTEGER NOT NULL
);

-- One row per issued refresh token; a login's rotations share a family_id so that a
-- reused (stolen) token can revoke the whole chain.
CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id  TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

-- last_seq is the room's event counter: every event takes last_seq + 1 in the
-- transaction that stores it, which makes seq gapless under concurrent writers.
CREATE TABLE rooms (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    name_key     TEXT    UNIQUE,          -- NULL for direct rooms: they live outside the name space
    topic        TEXT    NOT NULL DEFAULT '',
    is_private   BOOLEAN NOT NULL,
    is_direct    BOOLEAN NOT NULL,
    direct_key   TEXT    UNIQUE,          -- "<lower id>:<higher id>" for direct rooms
    last_seq     INTEGER NOT NULL DEFAULT 0,
    member_count INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE room_members (
    room_id       INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT    NOT NULL,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    author_id  INTEGER NOT NULL REFERENCES users(id),
    content    TEXT    NOT NULL,
    client_id  TEXT,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE
);
-- History pages and unread counts are range scans of this index.
CREATE UNIQUE INDEX messages_room_seq ON messages(room_id, seq);
-- client_id idempotency is per author.
CREATE UNIQUE INDEX messages_author_client ON messages(author_id, client_id) WHERE client_id IS NOT NULL;

-- The room's event log, one row per seq: WebSocket replay reads it. Payloads are
-- rebuilt from messages/users at read time, so a message's text is stored once.
CREATE TABLE room_events (
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    message_id INTEGER,
    user_id    INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
