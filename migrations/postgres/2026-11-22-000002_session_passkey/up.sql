-- C3: restricted accounts need a sign-in with a passkey older than the recovery; the session
-- says which passkey signed it in.
ALTER TABLE browser_sessions ADD COLUMN passkey_id TEXT;
