-- Nothing on SQLite: its rate-limit windows live in memory (one node). The migration exists
-- so both backends' migration folders carry the same names, and a schema version means the
-- same on both.
SELECT 1;
