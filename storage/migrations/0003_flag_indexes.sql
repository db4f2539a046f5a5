-- pombo schema, version 3: two indexes over the flags of messages, for the
-- commands every client sends at every folder check.
--
-- Each costs the writes: one entry more per delivery, and on a change of
-- flags the old entry deleted and a new one inserted (messages_unseen only
-- when \Seen changes). Expunges delete their entries.

-- UID SEARCH UNSEEN (Thunderbird: at every check of a folder). Without this
-- index the answer walks every message of the mailbox (6 ms for 10,000); a
-- partial index holds only the unseen messages, usually few. SQLite uses a
-- partial index only when the query has its WHERE term as written:
-- storage.Search writes "m.flags & 1 = 0" on its own for that. flags is in
-- the index so that it covers the query, and SQLite prefers it to
-- messages_view, which covers it too but holds every message.
CREATE INDEX messages_unseen ON messages (mailbox_id, uid, flags) WHERE flags & 1 = 0;

-- SELECT reads the UID and flags of every message of the mailbox
-- (storage.View); from this index alone, not from the table rows scattered
-- among the other mailboxes' (10,000 messages: 12 ms, 9.7 ms with it).
CREATE INDEX messages_view ON messages (mailbox_id, uid, flags, keywords);
