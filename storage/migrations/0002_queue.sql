-- pombo schema, version 2: what the outbound queue needs for delivery status
-- notifications (RFC 3464), and the DKIM keys of local domains.

-- The last result of a recipient: the host that gave it (empty when no SMTP
-- server was reached, e.g. a DNS failure), and its RFC 3463 status code.
-- last_error then holds the SMTP reply ("550 5.1.1 no such user") or, when
-- remote_mta is empty, a description of the local failure.
ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT NOT NULL DEFAULT '';
ALTER TABLE queue_recipients ADD COLUMN status_code TEXT NOT NULL DEFAULT '';

-- One DKIM signing key per local domain (RFC 6376); the public half is
-- published by the operator as a TXT record at selector._domainkey.domain.
CREATE TABLE dkim_keys (
	domain_id   INTEGER PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
	selector    TEXT NOT NULL,
	private_key TEXT NOT NULL, -- PKCS #8, PEM
	created     INTEGER NOT NULL
);
