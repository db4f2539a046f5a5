// Package smtp is pombo's SMTP server on emersion/go-smtp: the inbound (MX,
// port 25) server, and the shared core the submission server builds on.
//
// Shape: one Server per listener. A policy decides who may send what to
// whom (inbound: only local recipients, no AUTH; submission: AUTH first);
// everything else is shared by every policy:
//
//   - server.go: Server, Options, Limits; Serve/Close/Reject for package
//     server; newServer builds one go-smtp server around a policy.
//   - conn.go: the per-connection state (one per TCP connection, surviving
//     STARTTLS, which makes go-smtp start a new Session), the
//     close-after-reply switch, and the one log line per connection.
//   - session.go: the go-smtp Session: MAIL/RCPT bookkeeping, error
//     counting, limits; asks the policy at MAIL and RCPT.
//   - data.go, datareader.go: DATA and BDAT: the bare CR/LF and line length
//     checks, the trace headers, one storage.Deliver call (through the
//     Enqueuer, in the same transaction as the queued copy, when there are
//     remote targets too), the reply.
//   - trace.go: Return-Path, Delivered-To and Received.
//   - inbound.go: the port 25 policy; enqueue.go: the Enqueuer interface.
//   - submission.go: the port 587/465 policy (AUTH, sender ownership,
//     hourly limit); submission_data.go: its DATA (From: check, Message-ID
//     and Date added, local copies and the queue's in one transaction).
//
// A submission server is another policy (AUTH, sender checks) handed to
// newServer; its session sets session.authUser so that Received says
// ESMTPSA.
//
// Invariants:
//   - 250 after DATA/BDAT is sent only after storage.Deliver (and Enqueue)
//     returned, that is once the message is durable. The local copies and
//     the queued one are one transaction: a failure stores neither, so the
//     client's retry makes no second local copy.
//   - A message whose data holds a bare CR or bare LF, or a line longer than
//     Limits.MaxLineLength octets (CRLF included), is refused and the
//     connection is closed right after the reply: no byte that follows is
//     ever read as a command (SMTP smuggling).
//   - A read timeout or error in the middle of a message also closes the
//     connection after the reply, so the rest of a message is never parsed
//     as commands.
//   - The message is streamed into storage; nothing here holds it whole.
//   - Replies to the peer never carry internal error text; causes go to the
//     log.
package smtp
