ALTER TABLE browser_sessions DROP COLUMN passkey_id;
