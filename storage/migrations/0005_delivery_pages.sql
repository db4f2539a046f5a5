-- pombo schema, version 5: two b-trees fewer written by every delivery.
--
-- A commit writes to the WAL every page it changed, so each b-tree a
-- delivery touches costs at least one page per commit: 14 pages for a
-- commit of one 4 KB message, 20 for a commit of three
-- (BenchmarkDeliverWALPages). Two of them were only bookkeeping:
--
--   - users.used_bytes: a user's usage is the sum of their mailboxes'
--     sizes, which the triggers below keep anyway (storage/messages.go,
--     usedBytes). The user's row is no longer written by a delivery.
--   - the index messages_blob, which only served the foreign key of
--     messages.blob_id (a blob's deletion looked for rows still pointing
--     to it). blobs_free deletes a blob when its reference count, kept by
--     the triggers on messages and queue, falls to 0, that is when no row
--     points to it; the key checked nothing more. SQLite cannot drop a
--     foreign key, so messages is copied into a table without it. The
--     copy is of the message rows only (no message data): about a second
--     per 100,000 messages.
--
-- messages keeps AUTOINCREMENT and its sequence, carried over even when it
-- is past every id left: an id is never given twice (a POP3 session holds
-- message ids for its whole life).

DROP TRIGGER messages_count_ins;
DROP TRIGGER messages_count_del;
DROP TRIGGER messages_count_seen;
DROP TRIGGER messages_blob_ref;
DROP TRIGGER messages_blob_unref;
ALTER TABLE users DROP COLUMN used_bytes;

CREATE TABLE messages_new (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL, -- blobs(id), counted in blobs.refcount
	prefix        BLOB NOT NULL DEFAULT x'', -- per-recipient trace header lines
	flags         INTEGER NOT NULL DEFAULT 0, -- bitmask, see storage.Flags
	keywords      TEXT NOT NULL DEFAULT '',   -- space-separated
	internal_date INTEGER NOT NULL,           -- unix seconds
	size          INTEGER NOT NULL,           -- len(prefix) + blob size
	UNIQUE (mailbox_id, uid)
);
INSERT INTO messages_new (id, mailbox_id, uid, modseq, blob_id, prefix, flags, keywords, internal_date, size)
	SELECT id, mailbox_id, uid, modseq, blob_id, prefix, flags, keywords, internal_date, size
	FROM messages ORDER BY id;
INSERT INTO sqlite_sequence (name, seq) SELECT 'messages_new', 0
	WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages_new');
UPDATE sqlite_sequence
	SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0))
	WHERE name = 'messages_new';
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);

-- The triggers of messages, as in version 1 without users.used_bytes.
CREATE TRIGGER messages_blob_ref AFTER INSERT ON messages BEGIN
	UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;
END;
CREATE TRIGGER messages_blob_unref AFTER DELETE ON messages BEGIN
	UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
END;
CREATE TRIGGER messages_count_ins AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET messages = messages + 1,
		unseen = unseen + (NEW.flags & 1 = 0),
		size = size + NEW.size
	WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_count_del AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET messages = messages - 1,
		unseen = unseen - (OLD.flags & 1 = 0),
		size = size - OLD.size
	WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_count_seen AFTER UPDATE OF flags ON messages
WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN
	UPDATE mailboxes SET unseen = unseen + (NEW.flags & 1 = 0) - (OLD.flags & 1 = 0)
	WHERE id = NEW.mailbox_id;
END;
