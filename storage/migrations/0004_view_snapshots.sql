-- pombo schema, version 4: saved IMAP views.
--
-- The first SELECT of a mailbox after start-up read every message's row:
-- 0.1-0.4 s at 100,000 messages. A row here is a mailbox's view (its UIDs,
-- flags and keywords) as of one MODSEQ, written when a large view was read
-- (storage/viewsnap.go). Start-up reads it, then only the rows changed after
-- that MODSEQ, as the view cache does between two SELECTs. Rows are a cache:
-- deleting them loses nothing.
CREATE TABLE view_snapshots (
	mailbox_id   INTEGER PRIMARY KEY REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid_validity INTEGER NOT NULL,
	modseq       INTEGER NOT NULL, -- the view is the mailbox as of this MODSEQ
	data         BLOB NOT NULL     -- encodeView
);
