// Package pop3 is pombo's POP3 server: RFC 1939 (USER, PASS, STAT, LIST,
// RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL), RFC 2449 (CAPA, response codes,
// PIPELINING), RFC 2595 (STLS) and RFC 5034 (AUTH, with PLAIN and LOGIN).
//
// A session is an explicit state machine: AUTHORIZATION, TRANSACTION, UPDATE
// (RFC 1939 §3). The dispatch table (commands.go) names the states in which
// each command is allowed; everything a session knows lives on its conn,
// never on the shared Server.
//
// Invariants:
//   - The maildrop is the user's INBOX. Its list of messages is read once, at
//     login: message numbers, sizes and UIDLs stay the same for the whole
//     session whatever IMAP does meanwhile. A message expunged by IMAP is still
//     listed; RETR and TOP of it get a clean -ERR.
//   - DELE only marks. Messages are removed (storage.Store.Remove, which
//     publishes expunge events to IMAP sessions) only by QUIT in TRANSACTION
//     state, and the +OK goes out after the removal is durable. A connection
//     that ends any other way (drop, half-close, idle timeout, too many
//     errors, server shutdown) removes nothing.
//   - One POP3 session per maildrop at a time in this process; a second login
//     gets -ERR [IN-USE]. IMAP sessions are not locked out.
//   - UIDL of a message is "<uidvalidity>.<uid>" of its INBOX entry: storage
//     never reuses a UID in a mailbox nor a UIDVALIDITY, and never renumbers,
//     so the UIDL is stable for the life of the message and never names
//     another one. (The messages row id would be as stable, but it is a
//     counter shared by every user of the server: it would tell each POP3
//     user how much mail the others receive.)
//   - LIST and STAT sizes are the exact octets RETR then delivers before
//     dot-stuffing: storage holds every message with CRLF line ends. The one
//     exception is a message whose last line has no CRLF (possible through
//     IMAP APPEND, never through SMTP): RETR adds the CRLF the terminating
//     "." needs, two octets more than LIST said.
//   - RETR and TOP stream the message from storage, dot-stuffed on the way,
//     one buffer at a time; no message is held whole in memory.
//   - Command lines are at most 255 octets with CRLF (RFC 2449 §4), SASL
//     response lines at most 4096. USER, PASS and AUTH are refused (-ERR
//     [AUTH]) without TLS, except from loopback when allowed by
//     configuration; CAPA then lists neither USER nor SASL.
//   - A panic in a session is recovered and logged; it ends that session
//     only. A client that makes Options.MaxErrors mistakes is disconnected.
package pop3
