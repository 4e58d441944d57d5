-- A message's event is its row in `messages`, which has the same room and seq. Replay
-- reads `messages` and `room_events` side by side, so the log keeps only the other kinds
-- of event and a message costs one row and its indexes fewer to store.
DELETE FROM room_events WHERE kind = 'message';
