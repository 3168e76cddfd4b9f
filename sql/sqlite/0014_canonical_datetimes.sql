-- Plugin tables' datetimes in the one stored form (YYYY-MM-DD HH:MM:SS.ffffff, UTC): rows Lua's
-- insert wrote as "2026-12-02 02:56:17+00:00" and rows exec wrote in ISO 8601 are rewritten by
-- the data step that follows this file (db/stored_datetimes.py): SQL alone cannot find the tables
-- or keep microseconds. Nothing to do in SQL.
SELECT 1;
