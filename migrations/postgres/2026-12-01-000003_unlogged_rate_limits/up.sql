-- P7: rate-limit windows are counters that live one window long. Unlogged, they write no WAL
-- and their commits wait for no WAL flush, so a busy client IP's row is locked only for the
-- update itself; after a crash PostgreSQL empties the table, and the limits count afresh.
ALTER TABLE rate_limit_windows SET UNLOGGED;
