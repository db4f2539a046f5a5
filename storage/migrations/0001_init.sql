-- pombo schema, version 1. Everything IMAP needs is indexed here so that no
-- command has to scan a mailbox to answer; counters are kept by triggers so
-- that they cannot drift from the rows they count.

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE domains (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL
);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	address       TEXT NOT NULL UNIQUE,
	domain_id     INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
	password_hash TEXT NOT NULL,
	quota_bytes   INTEGER NOT NULL DEFAULT 0, -- 0: unlimited
	used_bytes    INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL
);

-- An alias maps an address (or "@domain" for a catch-all) to one or more
-- targets, each a local or remote address.
CREATE TABLE aliases (
	address TEXT NOT NULL,
	target  TEXT NOT NULL,
	PRIMARY KEY (address, target)
);

CREATE TABLE mailboxes (
	id            INTEGER PRIMARY KEY,
	user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name          TEXT NOT NULL,
	special_use   TEXT NOT NULL DEFAULT '',
	subscribed    INTEGER NOT NULL DEFAULT 1,
	uidvalidity   INTEGER NOT NULL,
	uidnext       INTEGER NOT NULL DEFAULT 1,
	highestmodseq INTEGER NOT NULL DEFAULT 1,
	messages      INTEGER NOT NULL DEFAULT 0,
	unseen        INTEGER NOT NULL DEFAULT 0,
	size          INTEGER NOT NULL DEFAULT 0,
	UNIQUE (user_id, name)
);

-- A blob is one raw message, shared by every mailbox entry (and queue entry)
-- that holds it; its bytes live in fixed-size chunks so they are written and
-- read as streams. The parse of the message is kept beside it: parse once.
CREATE TABLE blobs (
	id          INTEGER PRIMARY KEY,
	size        INTEGER NOT NULL,
	refcount    INTEGER NOT NULL DEFAULT 0,
	header_size INTEGER NOT NULL DEFAULT 0,
	envelope    TEXT NOT NULL DEFAULT '{}',
	body        TEXT NOT NULL DEFAULT '{}',
	created     INTEGER NOT NULL
);

CREATE TABLE blob_chunks (
	blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,
	data    BLOB NOT NULL,
	PRIMARY KEY (blob_id, seq)
);

-- Header fields and decoded text for SEARCH, apart from blobs so that
-- listing messages never reads them.
CREATE TABLE blob_search (
	blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
	headers TEXT NOT NULL,
	text    TEXT NOT NULL
);

CREATE TABLE messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	blob_id       INTEGER NOT NULL REFERENCES blobs(id),
	prefix        BLOB NOT NULL DEFAULT x'', -- per-recipient trace header lines
	flags         INTEGER NOT NULL DEFAULT 0, -- bitmask, see storage.Flags
	keywords      TEXT NOT NULL DEFAULT '',   -- space-separated
	internal_date INTEGER NOT NULL,           -- unix seconds
	size          INTEGER NOT NULL,           -- len(prefix) + blob size
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);

-- Expunged messages leave a tombstone with the MODSEQ of their expunge.
CREATE TABLE expunged (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid        INTEGER NOT NULL,
	modseq     INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

-- The outbound queue: one row per message, one per recipient.
CREATE TABLE queue (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
	sender     TEXT NOT NULL,  -- envelope MAIL FROM ("" for bounces)
	blob_id    INTEGER NOT NULL REFERENCES blobs(id),
	prefix     BLOB NOT NULL DEFAULT x'',
	smtputf8   INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL
);

CREATE TABLE queue_recipients (
	id           INTEGER PRIMARY KEY,
	queue_id     INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
	address      TEXT NOT NULL,
	status       TEXT NOT NULL DEFAULT 'pending', -- pending | sending | sent | failed
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	updated      INTEGER NOT NULL
);
CREATE INDEX queue_recipients_due ON queue_recipients (status, next_attempt);
CREATE INDEX queue_recipients_queue ON queue_recipients (queue_id);

-- Reference counts of blobs.
CREATE TRIGGER messages_blob_ref AFTER INSERT ON messages BEGIN
	UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;
END;
CREATE TRIGGER messages_blob_unref AFTER DELETE ON messages BEGIN
	UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
END;
CREATE TRIGGER queue_blob_ref AFTER INSERT ON queue BEGIN
	UPDATE blobs SET refcount = refcount + 1 WHERE id = NEW.blob_id;
END;
CREATE TRIGGER queue_blob_unref AFTER DELETE ON queue BEGIN
	UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
END;
CREATE TRIGGER blobs_free AFTER UPDATE OF refcount ON blobs WHEN NEW.refcount <= 0 BEGIN
	DELETE FROM blobs WHERE id = NEW.id;
END;

-- Mailbox counters and the user's quota usage.
CREATE TRIGGER messages_count_ins AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET messages = messages + 1,
		unseen = unseen + (NEW.flags & 1 = 0),
		size = size + NEW.size
	WHERE id = NEW.mailbox_id;
	UPDATE users SET used_bytes = used_bytes + NEW.size
	WHERE id = (SELECT user_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
CREATE TRIGGER messages_count_del AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET messages = messages - 1,
		unseen = unseen - (OLD.flags & 1 = 0),
		size = size - OLD.size
	WHERE id = OLD.mailbox_id;
	UPDATE users SET used_bytes = used_bytes - OLD.size
	WHERE id = (SELECT user_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
CREATE TRIGGER messages_count_seen AFTER UPDATE OF flags ON messages
WHEN (OLD.flags & 1) != (NEW.flags & 1) BEGIN
	UPDATE mailboxes SET unseen = unseen + (NEW.flags & 1 = 0) - (OLD.flags & 1 = 0)
	WHERE id = NEW.mailbox_id;
END;
