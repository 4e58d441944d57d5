-- Representative data at schema version 0001, inserted the way that version's server
-- stored it; tests/migrations.rs checks it is served after migrating to the latest.
-- Every user's password is "password-v1-user".
INSERT INTO users (id, username, username_key, email, email_key, password_hash, is_admin, is_active, created_at) VALUES
    (1, 'Alice', 'alice', 'Alice@Example.com', 'alice@example.com', '$argon2id$v=19$m=19456,t=2,p=1$IEa6yQ3NEM+iiFfb368lkw$KGarcLv4SSNfjTtSFaPSMoE5DaLZACsydOPA8aATKaM', TRUE, TRUE, 1764000000000),
    (2, 'bob', 'bob', 'bob@example.com', 'bob@example.com', '$argon2id$v=19$m=19456,t=2,p=1$IEa6yQ3NEM+iiFfb368lkw$KGarcLv4SSNfjTtSFaPSMoE5DaLZACsydOPA8aATKaM', FALSE, TRUE, 1764000001000),
    (3, 'carol', 'carol', 'carol@example.com', 'carol@example.com', '$argon2id$v=19$m=19456,t=2,p=1$IEa6yQ3NEM+iiFfb368lkw$KGarcLv4SSNfjTtSFaPSMoE5DaLZACsydOPA8aATKaM', FALSE, FALSE, 1764000002000);

INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, revoked_at, created_at) VALUES
    (1, 1, 'family-1', 'hash-1', 4102444800000, NULL, 1764000000000),
    (2, 1, 'family-1', 'hash-0', 4102444800000, 1764000000500, 1764000000000);

INSERT INTO rooms (id, name, name_key, topic, is_private, is_direct, direct_key, last_seq, member_count, created_at, updated_at) VALUES
    (1, 'General', 'general', 'Everything', FALSE, FALSE, NULL, 6, 2, 1764000010000, 1764000010000),
    (2, 'secret', 'secret', '', TRUE, FALSE, NULL, 1, 2, 1764000020000, 1764000020000),
    (3, 'Alice,bob', NULL, '', TRUE, TRUE, '1:2', 0, 2, 1764000030000, 1764000030000);

INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) VALUES
    (1, 1, 'owner', 1764000010000, 0),
    (1, 2, 'member', 1764000011000, 2),
    (2, 1, 'owner', 1764000020000, 0),
    (2, 2, 'admin', 1764000021000, 1),
    (3, 1, 'member', 1764000030000, 0),
    (3, 2, 'member', 1764000030000, 0);

INSERT INTO messages (id, room_id, seq, author_id, content, client_id, created_at, edited_at, deleted) VALUES
    (1, 1, 2, 1, 'hello from version 1', 'v1-a', 1764000012000, NULL, FALSE),
    (2, 1, 3, 2, 'edited in version 1', NULL, 1764000013000, 1764000015000, FALSE),
    (3, 1, 4, 1, '', 'v1-b', 1764000014000, NULL, TRUE);

INSERT INTO room_events (room_id, seq, kind, message_id, user_id, created_at) VALUES
    (1, 1, 'member_joined', NULL, 2, 1764000011000),
    (1, 2, 'message', 1, NULL, 1764000012000),
    (1, 3, 'message', 2, NULL, 1764000013000),
    (1, 4, 'message', 3, NULL, 1764000014000),
    (1, 5, 'message_edited', 2, NULL, 1764000015000),
    (1, 6, 'message_deleted', 3, NULL, 1764000016000),
    (2, 1, 'member_joined', NULL, 2, 1764000021000);

-- Explicit ids leave PostgreSQL's identity sequences behind; the server of that version
-- only ever let them assign ids, so bring them level as its data would have them.
SELECT setval(pg_get_serial_sequence('users', 'id'), 3);
SELECT setval(pg_get_serial_sequence('refresh_tokens', 'id'), 2);
SELECT setval(pg_get_serial_sequence('rooms', 'id'), 3);
SELECT setval(pg_get_serial_sequence('messages', 'id'), 3);
