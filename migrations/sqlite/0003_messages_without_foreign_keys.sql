-- PostgreSQL drops the foreign keys of `messages` at this version (its 0003). SQLite keeps
-- them: each check is one lookup in the small, cached rooms and users tables, and dropping
-- them would mean rebuilding the messages table. The version exists so that both backends
-- keep the same numbering.
SELECT 1;
