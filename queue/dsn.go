package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"pombo/storage"
)

// maxDSNHeader bounds the copy of the original header in a DSN.
const maxDSNHeader = 64 << 10

// dsnHold is how long a message whose DSN could not be stored waits before
// the next try.
const dsnHold = time.Minute

// report sends one DSN for the failed recipients of a message that have
// not been reported yet, and drops them from the queue in the same
// transaction.
func (q *Queue) report(ctx context.Context, queueID int64) {
	m, err := q.st.QueueItem(ctx, queueID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			q.log.Error("read queued message", "queue_id", queueID, "err", err)
		}
		return
	}
	var failed []storage.QueuedRecipient
	var ids []int64
	for _, r := range m.Recipients {
		if r.Status == storage.QueueFailed {
			failed = append(failed, r)
			ids = append(ids, r.ID)
		}
	}
	if len(failed) == 0 {
		return
	}
	hold := func(msg string, err error) {
		q.log.Error(msg, "queue_id", queueID, "err", err)
		q.mu.Lock()
		q.hold[queueID] = time.Now().Add(dsnHold)
		q.mu.Unlock()
	}
	if m.Sender == "" {
		// RFC 5321 §4.5.5 / RFC 3464 §4: never bounce a bounce.
		q.log.Warn("undeliverable bounce dropped", "queue_id", queueID, "rcpts", len(ids))
		if err := q.st.Bounce(ctx, queueID, ids, nil, nil, nil); err != nil {
			hold("drop undeliverable bounce", err)
		}
		return
	}
	local, remote, err := q.bounceTargets(ctx, m.Sender)
	if err != nil {
		hold("find the sender of a bounce", err)
		return
	}
	if len(local)+len(remote) == 0 {
		q.log.Warn("sender of an undeliverable message is gone; no DSN", "queue_id", queueID, "from", m.Sender)
		if err := q.st.Bounce(ctx, queueID, ids, nil, nil, nil); err != nil {
			hold("drop failed recipients", err)
		}
		return
	}
	dsn, err := q.buildDSN(ctx, m, failed, time.Now())
	if err != nil {
		hold("build DSN", err)
		return
	}
	if err := q.st.Bounce(ctx, queueID, ids, bytes.NewReader(dsn), local, remote); err != nil {
		hold("store DSN", err)
		return
	}
	q.mu.Lock()
	delete(q.hold, queueID)
	q.mu.Unlock()
	q.log.Info("DSN sent", "queue_id", queueID, "to", m.Sender, "failed_rcpts", len(ids))
	if len(remote) > 0 {
		q.kick()
	}
}

// bounceTargets is where a DSN to sender goes: the INBOX of the local
// users the address resolves to, and the remote addresses it stands for.
func (q *Queue) bounceTargets(ctx context.Context, sender string) (local []storage.Recipient, remote []string, err error) {
	ts, err := q.st.Resolve(ctx, sender)
	switch {
	case errors.Is(err, storage.ErrUnknownDomain):
		return nil, []string{sender}, nil
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrBadAddress):
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	}
	for _, t := range ts {
		if t.UserID != 0 {
			local = append(local, storage.Recipient{UserID: t.UserID})
		} else {
			remote = append(remote, t.Address)
		}
	}
	return local, remote, nil
}

// buildDSN writes an RFC 3464 report: multipart/report with a text part
// for people, a message/delivery-status part, and the original header
// (RFC 6533's global types when addresses or header are UTF-8).
func (q *Queue) buildDSN(ctx context.Context, m *storage.QueuedMessage, failed []storage.QueuedRecipient, now time.Time) ([]byte, error) {
	orig, err := q.originalHeader(ctx, m)
	if err != nil {
		return nil, err
	}
	global := m.SMTPUTF8 || !isASCII(string(orig)) || !rcptsASCII(failed)
	host := q.opts.Hostname

	subject := "Undelivered mail"
	if m.Subject != "" {
		subject += ": " + truncate(m.Subject, 200)
	}
	boundary := make([]byte, 16)
	rand.Read(boundary)
	// go-message writes fields last-set first: set them bottom-up.
	var h mail.Header
	h.SetContentType("multipart/report", map[string]string{
		"report-type": "delivery-status",
		"boundary":    "dsn-" + hex.EncodeToString(boundary),
	})
	h.Set("MIME-Version", "1.0")
	// RFC 3834 §5: a DSN is an automatic response.
	h.Set("Auto-Submitted", "auto-replied")
	if m.MessageID != "" {
		h.SetMsgIDList("References", []string{m.MessageID})
		h.SetMsgIDList("In-Reply-To", []string{m.MessageID})
	}
	if err := h.GenerateMessageIDWithHostname(host); err != nil {
		return nil, err
	}
	h.SetDate(now)
	h.SetSubject(subject)
	h.SetAddressList("To", []*mail.Address{{Address: m.Sender}})
	h.SetAddressList("From", []*mail.Address{{Name: "Mail Delivery System", Address: "MAILER-DAEMON@" + host}})

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, err
	}
	var th message.Header
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	pw, err := w.CreatePart(th)
	if err != nil {
		return nil, err
	}
	io.WriteString(pw, dsnText(host, failed))
	pw.Close()

	var sh message.Header
	if global {
		sh.SetContentType("message/global-delivery-status", nil)
	} else {
		sh.SetContentType("message/delivery-status", nil)
	}
	pw, err = w.CreatePart(sh)
	if err != nil {
		return nil, err
	}
	io.WriteString(pw, dsnFields(host, m, failed, global))
	pw.Close()

	var oh message.Header
	if global {
		oh.SetContentType("message/global-headers", nil)
	} else {
		oh.SetContentType("text/rfc822-headers", nil)
	}
	pw, err = w.CreatePart(oh)
	if err != nil {
		return nil, err
	}
	pw.Write(orig)
	pw.Close()
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// originalHeader reads the header section of the queued message (whole
// lines, at most maxDSNHeader octets).
func (q *Queue) originalHeader(ctx context.Context, m *storage.QueuedMessage) ([]byte, error) {
	r, err := q.st.OpenQueued(ctx, m.ID)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	n := min(m.HeaderSize, maxDSNHeader)
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read original header: %w", err)
	}
	if n < m.HeaderSize {
		if i := bytes.LastIndex(b, []byte("\r\n")); i >= 0 {
			b = b[:i+2]
		}
	}
	// The blank line that ends the header section is not part of it.
	b = bytes.TrimRight(b, "\r\n")
	return append(b, "\r\n"...), nil
}

func dsnText(host string, failed []storage.QueuedRecipient) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", host)
	b.WriteString("Your message could not be delivered to the following recipients:\r\n\r\n")
	for _, r := range failed {
		fmt.Fprintf(&b, "<%s>\r\n", r.Address)
		if r.RemoteMTA != "" {
			fmt.Fprintf(&b, "    %s said: %s\r\n\r\n", r.RemoteMTA, r.LastError)
		} else {
			fmt.Fprintf(&b, "    %s\r\n\r\n", r.LastError)
		}
	}
	b.WriteString("The header of your message is attached.\r\n")
	return b.String()
}

// dsnFields writes the message/delivery-status body (RFC 3464 §2).
func dsnFields(host string, m *storage.QueuedMessage, failed []storage.QueuedRecipient, global bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", host)
	fmt.Fprintf(&b, "Arrival-Date: %s\r\n", m.Created.Format(time.RFC1123Z))
	for _, r := range failed {
		b.WriteString("\r\n")
		addrType := "rfc822"
		if global && !isASCII(r.Address) {
			addrType = "utf-8" // RFC 6533 §3
		}
		fmt.Fprintf(&b, "Final-Recipient: %s; %s\r\n", addrType, r.Address)
		b.WriteString("Action: failed\r\n")
		fmt.Fprintf(&b, "Status: %s\r\n", failedStatus(r.StatusCode))
		if r.RemoteMTA != "" {
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", r.RemoteMTA)
			b.WriteString(fold("Diagnostic-Code: smtp; " + truncate(printable(r.LastError), 800)))
		}
		fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", r.Updated.Format(time.RFC1123Z))
	}
	return b.String()
}

// failedStatus makes a stored code a valid status for Action: failed.
func failedStatus(code string) string {
	if !isEnhanced(code, 500) && !isEnhanced(code, 400) {
		return "5.0.0"
	}
	return "5" + code[1:]
}

// fold breaks a header field at spaces so that lines stay short
// (RFC 5322 §2.2.3), and ends it with CRLF.
func fold(field string) string {
	const width = 76
	var b strings.Builder
	line := 0
	for i, word := range strings.Split(field, " ") {
		if i > 0 {
			if line+1+len(word) > width {
				b.WriteString("\r\n ")
				line = 1
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(word)
		line += len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}
