package smtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"pombo/storage"
)

// maxSubmitHeader bounds the header block read into memory to check From:.
const maxSubmitHeader = 256 << 10

var errHeaderTooBig = errors.New("header too big")

// Data implements gosmtp.Session for submission: like the core's Data, but
// the header is read first to check From: against the user's addresses and
// to add Message-ID and Date when missing; the local copy goes into the
// mailboxes and the remote one to the queue, and 250 comes after both.
func (ss *subSession) Data(r io.Reader) error {
	se := ss.session
	t, done, err := se.beginData()
	if err != nil {
		return err
	}
	defer done()
	tr := se.trace(t)
	dr := newDataReader(r, se.s.opts.Limits.MaxLineLength, se.c.readFailed.Load)
	br := bufio.NewReader(dr)
	hdr, herr := readHeader(br)
	var refusal *gosmtp.SMTPError
	switch {
	case herr != nil && dr.err == nil && errors.Is(herr, errHeaderTooBig):
		refusal = reply(552, 5, 3, 4, "Message header too big")
	case herr != nil:
		err = herr // the dataReader's error decides the reply
	default:
		ctx, cancel := se.s.ctx()
		refusal, err = ss.checkFrom(ctx, hdr)
		cancel()
	}
	if refusal != nil || err != nil {
		io.Copy(io.Discard, br)
	}
	if refusal == nil && err == nil {
		added := completeHeader(hdr, tr, se.s.opts.Hostname)
		body := io.MultiReader(bytes.NewReader(added), bytes.NewReader(hdr), br)
		err = safely(func() error { return ss.store(body, t, tr) })
	}
	size := dr.n
	var e error
	var result string
	var ok bool
	if refusal != nil && dr.err == nil {
		e, result = se.refuse(refusal), "553 from not owned"
		if refusal.Code == 552 {
			result = "552 header too big"
		}
	} else {
		e, result, ok = se.outcome(dr, err, t)
	}
	se.c.logData(t.from, t.rcpts, size, result, ok)
	if ok {
		ss.p.rate.record(ss.userID, time.Now())
		return reply(250, 2, 0, 0, "Ok: queued as "+tr.id)
	}
	return e
}

// readHeader reads the header block up to and including the empty line
// (or the whole message when it has no body).
func readHeader(br *bufio.Reader) ([]byte, error) {
	var hdr []byte
	for {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if len(hdr) > maxSubmitHeader {
			return nil, errHeaderTooBig
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return hdr, nil
		}
		if err != nil {
			return nil, err
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return hdr, nil
		}
	}
}

// headerFields returns the values of the fields named name (unfolded).
func headerFields(hdr []byte, name string) []string {
	var out []string
	lines := strings.Split(string(hdr), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		k, v, ok := strings.Cut(l, ":")
		if !ok || l == "" || l[0] == ' ' || l[0] == '\t' || lowerASCII(strings.TrimSpace(k)) != name {
			continue
		}
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			v += " " + strings.TrimSpace(strings.TrimRight(lines[i], "\r"))
		}
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// checkFrom requires exactly one From: field, every address of which is the
// user's own or one of their aliases.
func (ss *subSession) checkFrom(ctx context.Context, hdr []byte) (*gosmtp.SMTPError, error) {
	froms := headerFields(hdr, "from")
	if len(froms) != 1 {
		return errFromNotOwned, nil
	}
	// Display names in any charset: only the addresses matter here, so
	// encoded words are left undecoded rather than failing the parse.
	p := mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
	}}
	list, err := p.ParseList(froms[0])
	if err != nil || len(list) == 0 {
		return errFromNotOwned, nil
	}
	for _, a := range list {
		ok, err := ss.p.owns(ctx, ss.session, ss.userID, a.Address)
		if err != nil {
			return nil, err
		}
		if !ok {
			ss.s.log.Info("submission refused: From: not owned",
				append(ss.c.logAttrs(), "user", ss.authUser, "from", a.Address)...)
			return errFromNotOwned, nil
		}
	}
	return nil, nil
}

// completeHeader returns the Message-ID and Date fields the message lacks
// (RFC 6409 §8.2, 8.3), CRLF terminated.
func completeHeader(hdr []byte, tr *trace, host string) []byte {
	var b []byte
	if len(headerFields(hdr, "message-id")) == 0 {
		b = append(b, "Message-ID: <"+tr.id+"@"+host+">\r\n"...)
	}
	if len(headerFields(hdr, "date")) == 0 {
		b = append(b, "Date: "+tr.date.Format(time.RFC1123Z)+"\r\n"...)
	}
	return b
}

// store delivers the local copies with one storage.Deliver call and queues
// the remote one, in one transaction when there are both.
func (ss *subSession) store(r io.Reader, t *txn, tr *trace) error {
	ctx := context.Background()
	rcpts := localRecipients(t, tr)
	received := tr.received("")
	switch {
	case len(t.remote) == 0:
		_, err := ss.s.opts.Store.Deliver(ctx, r, rcpts, storage.DeliverOptions{})
		return err
	case len(rcpts) == 0:
		return ss.p.queue.Submit(ctx, t.from, ss.userID, t.remote, t.utf8, io.MultiReader(strings.NewReader(received), r))
	}
	return ss.p.queue.DeliverAndSubmit(ctx, r, rcpts, t.from, ss.userID, t.remote, t.utf8, []byte(received))
}
