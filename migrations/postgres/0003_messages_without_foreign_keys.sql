-- A message is stored only by code that has just read its room and author in the same
-- transaction, under the room's row lock (the send batch, and a single post), and a room
-- is deleted together with its messages (delete_room). The foreign-key triggers checked
-- both again for every row: a quarter of PostgreSQL's CPU during durable sends
-- (docs/BENCHMARKS.md, session 8). Users are never deleted, only deactivated.
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_author_id_fkey;
