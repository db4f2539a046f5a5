package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"pombo/storage"
)

// maxRcptsPerTransaction: RFC 5321 §4.5.3.1.8 obliges servers to take 100.
const maxRcptsPerTransaction = 100

// process is one worker's turn on one message.
func (q *Queue) process(ctx context.Context, j job) {
	m, err := q.st.QueueItem(ctx, j.queueID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
			q.log.Error("read queued message", "queue_id", j.queueID, "err", err)
		}
		return
	}
	want := map[int64]bool{}
	for _, r := range j.rcpts {
		want[r.ID] = true
	}
	var rcpts []storage.QueuedRecipient
	for _, r := range m.Recipients {
		if want[r.ID] && r.Status == storage.QueueSending {
			rcpts = append(rcpts, r)
		}
	}
	if len(rcpts) > 0 {
		q.deliver(ctx, m, rcpts)
	}
	if ctx.Err() == nil {
		q.report(ctx, j.queueID)
	}
}

// deliver tries every claimed recipient once and records the outcomes.
func (q *Queue) deliver(ctx context.Context, m *storage.QueuedMessage, rcpts []storage.QueuedRecipient) {
	routes, failed := q.routes(ctx, rcpts)
	byID := map[int64]storage.QueuedRecipient{}
	for _, r := range rcpts {
		byID[r.ID] = r
	}
	q.record(ctx, m, byID, failed)
	for _, rt := range routes {
		if ctx.Err() != nil {
			return
		}
		q.record(ctx, m, byID, q.session(ctx, m, rt))
	}
}

// record writes the failures of an attempt: permanent ones (and temporary
// ones past give_up_after) become failed, the others are retried later.
// When the queue is being stopped, temporary failures are not recorded:
// the interruption caused them, and Close puts those recipients back.
func (q *Queue) record(ctx context.Context, m *storage.QueuedMessage, rcpts map[int64]storage.QueuedRecipient, res map[int64]*failure) {
	type key struct {
		perm bool
		next int64
		a    storage.Attempt
	}
	groups := map[key][]int64{}
	now := time.Now()
	expired := now.Sub(m.Created) >= q.opts.GiveUpAfter
	for id, f := range res {
		if f == nil {
			continue
		}
		k := key{perm: f.perm, a: f.Attempt}
		if !f.perm {
			if ctx.Err() != nil {
				continue
			}
			if expired {
				k.perm = true
				k.a.StatusCode = "5.4.7" // RFC 3463: delivery time expired
				k.a.Reply = fmt.Sprintf("gave up after %s; last error: %s", q.opts.GiveUpAfter, f.Reply)
				if f.RemoteMTA != "" {
					k.a.Reply = f.Reply // still an SMTP reply, for Diagnostic-Code
				}
			} else {
				k.next = now.Add(q.backoff(rcpts[id].Attempts + 1)).Unix()
			}
		}
		groups[k] = append(groups[k], id)
	}
	wctx := context.WithoutCancel(ctx)
	for k, ids := range groups {
		var err error
		result := "deferred"
		if k.perm {
			result = "failed"
			err = q.st.MarkFailed(wctx, ids, k.a)
		} else {
			err = q.st.MarkRetry(wctx, ids, time.Unix(k.next, 0), k.a)
		}
		for _, id := range ids {
			q.log.Info("delivery", "queue_id", m.ID, "rcpt", rcpts[id].Address, "result", result,
				"host", k.a.RemoteMTA, "status", k.a.StatusCode, "reply", k.a.Reply)
		}
		if err != nil {
			q.log.Error("record delivery result", "queue_id", m.ID, "err", err)
		}
	}
}

// session delivers one route: it tries the route's hosts in order until one
// takes the transaction, and returns the failures per recipient (recipients
// it does not return were sent, and already recorded as such).
func (q *Queue) session(ctx context.Context, m *storage.QueuedMessage, rt *route) map[int64]*failure {
	all := func(f *failure) map[int64]*failure {
		out := make(map[int64]*failure, len(rt.rcpts))
		for _, r := range rt.rcpts {
			out[r.ID] = f
		}
		return out
	}
	if rt.relay {
		return q.relaySession(ctx, m, rt, all)
	}
	last := tempFail("4.4.1", "no MX host of the domain could be reached")
	connects := 0
	for _, h := range rt.hosts {
		ips, notFound, err := q.addrs(ctx, h)
		if err != nil {
			if ctx.Err() != nil {
				return all(tempFail("4.4.1", "interrupted"))
			}
			if notFound && h.implicit {
				return all(permFail("5.1.2", "domain %s has no MX and no address record", h.name))
			}
			last = tempFail("4.4.4", "DNS lookup of %s failed: %s", h.name, dnsReason(err))
			continue
		}
		for _, ip := range ips {
			if connects == maxConnects {
				return all(last)
			}
			connects++
			res, f, tlsFailed := q.attempt(ctx, m, rt, h, ip, true)
			if res != nil {
				return res
			}
			if tlsFailed && ctx.Err() == nil {
				// Opportunistic TLS failed: plaintext on the same host.
				q.log.Info("STARTTLS failed, retrying in plaintext", "queue_id", m.ID, "host", h.name, "reason", f.Reply)
				res, f, _ = q.attempt(ctx, m, rt, h, ip, false)
				if res != nil {
					return res
				}
			}
			last = f
			if ctx.Err() != nil {
				return all(last)
			}
		}
	}
	return all(last)
}

// relaySession delivers everything through the smarthost.
func (q *Queue) relaySession(ctx context.Context, m *storage.QueuedMessage, rt *route, all func(*failure) map[int64]*failure) map[int64]*failure {
	r := q.opts.Relay
	h := host{name: r.Host}
	if ip, err := netip.ParseAddr(r.Host); err == nil {
		h.ip = ip.Unmap()
	}
	ips, _, err := q.addrs(ctx, h)
	if err != nil {
		return all(tempFail("4.4.4", "DNS lookup of relay %s failed: %s", r.Host, dnsReason(err)))
	}
	last := tempFail("4.4.1", "relay %s could not be reached", r.Host)
	for _, ip := range ips {
		res, f, _ := q.attempt(ctx, m, rt, h, ip, true)
		if res != nil {
			return res
		}
		last = f
		if ctx.Err() != nil {
			break
		}
	}
	return all(last)
}

// attempt runs one SMTP session with one address of a host. It returns the
// per-recipient results once a transaction took place (res != nil), or
// else why the host could not be used (f), and whether that was a failed
// STARTTLS.
func (q *Queue) attempt(ctx context.Context, m *storage.QueuedMessage, rt *route, h host, ip netip.Addr, useTLS bool) (res map[int64]*failure, f *failure, tlsFailed bool) {
	port := q.opts.Port
	if rt.relay {
		port = q.opts.Relay.Port
	}
	addr := netip.AddrPortFrom(ip, uint16(port)).String()
	where := h.name
	if !h.ip.IsValid() {
		where += "[" + ip.String() + "]"
	}
	d := net.Dialer{Timeout: q.opts.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, tempFail("4.4.1", "connect to %s:%d: %s", where, port, netReason(err)), false
	}
	relayTLS := &tls.Config{ServerName: h.name, RootCAs: q.opts.RootCAs, MinVersion: tls.VersionTLS12}
	if rt.relay && q.opts.Relay.TLS == RelayImplicit {
		tc := tls.Client(conn, relayTLS)
		tc.SetDeadline(time.Now().Add(q.opts.CommandTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, tempFail("4.7.0", "TLS with relay %s: %s", where, netReason(err)), false
		}
		conn = tc
	}
	c := newClient(ctx, conn, h.name, q.opts.CommandTimeout, q.opts.DataTimeout)
	c.tls = rt.relay && q.opts.Relay.TLS == RelayImplicit
	defer c.close()
	connFail := func(err error) *failure {
		if isReply(err) {
			return classify(err, h.name)
		}
		return classify(err, where)
	}
	if err := c.greet(); err != nil {
		return nil, connFail(err), false
	}
	if err := c.hello(q.opts.Hostname); err != nil {
		return nil, connFail(err), false
	}
	upgraded := true
	switch {
	case rt.relay && q.opts.Relay.TLS == RelayStartTLS:
		if !c.has("STARTTLS") {
			return nil, tempFail("4.7.0", "relay %s does not offer STARTTLS", where), false
		}
		if err := c.startTLS(relayTLS); err != nil {
			return nil, tempFail("4.7.0", "STARTTLS with relay %s: %s", where, netReason(err)), false
		}
	case !rt.relay && useTLS && c.has("STARTTLS"):
		cfg := &tls.Config{InsecureSkipVerify: true} // opportunistic: see the package doc
		if !h.ip.IsValid() {
			cfg.ServerName = h.name
		}
		if err := c.startTLS(cfg); err != nil {
			return nil, connFail(err), true
		}
	default:
		upgraded = false
	}
	if upgraded {
		// RFC 3207 §4.2: forget what was said before TLS; ask again.
		if err := c.hello(q.opts.Hostname); err != nil {
			return nil, connFail(err), false
		}
	}
	if rt.relay && q.opts.Relay.Username != "" {
		// Never a password in clear, except to a relay on loopback.
		if !c.tls && !(q.opts.Relay.TLS == RelayNone && ip.IsLoopback()) {
			return nil, tempFail("4.7.0", "not sending the relay password to %s without TLS", where), false
		}
		if err := c.authPlain(q.opts.Relay.Username, q.opts.Relay.Password); err != nil {
			f := connFail(err)
			f.perm = false // a wrong password is the operator's to fix, not the sender's
			f.StatusCode = "4.7.0"
			return nil, f, false
		}
	}
	res, f = q.transact(ctx, c, m, rt)
	if res != nil {
		c.quit()
	}
	return res, f, false
}

// transact sends the message to the route's recipients, in transactions of
// at most maxRcptsPerTransaction recipients, pipelined when the server
// allows (RFC 2920). It returns f instead of results when the server
// refused the sender temporarily before any recipient was tried, so that
// the next host can be tried.
func (q *Queue) transact(ctx context.Context, c *client, m *storage.QueuedMessage, rt *route) (map[int64]*failure, *failure) {
	res := map[int64]*failure{}
	all := func(rs []storage.QueuedRecipient, f *failure) {
		for _, r := range rs {
			res[r.ID] = f
		}
	}
	mta := c.host
	if m.SMTPUTF8 && !c.has("SMTPUTF8") {
		code := "5.6.9" // RFC 6531: UTF-8 header fields cannot be sent
		if !isASCII(m.Sender) || !rcptsASCII(rt.rcpts) {
			code = "5.6.7" // non-ASCII addresses
		}
		all(rt.rcpts, permFail(code, "%s does not support SMTPUTF8, which the message needs", mta))
		return res, nil
	}
	if max := c.maxSize(); max > 0 && m.Size > max {
		all(rt.rcpts, permFail("5.3.4", "message of %d octets is larger than the %d %s accepts", m.Size, max, mta))
		return res, nil
	}
	params := ""
	if c.has("8BITMIME") {
		params += " BODY=8BITMIME"
	}
	if m.SMTPUTF8 {
		params += " SMTPUTF8"
	}
	if c.has("SIZE") {
		params += " SIZE=" + strconv.FormatInt(m.Size, 10)
	}
	for start := 0; start < len(rt.rcpts); start += maxRcptsPerTransaction {
		batch := rt.rcpts[start:min(start+maxRcptsPerTransaction, len(rt.rcpts))]
		f, connLevel := q.transaction(ctx, c, m, batch, params, res)
		if f != nil {
			if connLevel && start == 0 {
				return nil, f
			}
			// The session is over: what it did not decide gets f.
			for _, r := range rt.rcpts[start:] {
				if _, decided := res[r.ID]; !decided {
					res[r.ID] = f
				}
			}
			return res, nil
		}
	}
	return res, nil
}

func rcptsASCII(rs []storage.QueuedRecipient) bool {
	for _, r := range rs {
		if !isASCII(r.Address) {
			return false
		}
	}
	return true
}

// transaction is one MAIL..DATA exchange. Per-recipient results go into
// res; f is set when the transaction as a whole failed and the session
// cannot go on, connLevel when nothing was decided for any recipient.
func (q *Queue) transaction(ctx context.Context, c *client, m *storage.QueuedMessage, batch []storage.QueuedRecipient, params string, res map[int64]*failure) (f *failure, connLevel bool) {
	mta := c.host
	pipelining := c.has("PIPELINING")
	if err := c.send("MAIL FROM:<%s>%s", m.Sender, params); err != nil {
		return classify(err, mta), true
	}
	if !pipelining {
		if err := c.flush(); err != nil {
			return classify(err, mta), true
		}
		if _, err := c.expect("MAIL FROM", 2); err != nil {
			f := classify(err, mta)
			return f, !f.perm
		}
	}
	var accepted []storage.QueuedRecipient
	var mailErr error
	if pipelining {
		for _, r := range batch {
			if err := c.send("RCPT TO:<%s>", r.Address); err != nil {
				return classify(err, mta), true
			}
		}
		if err := c.send("DATA"); err != nil {
			return classify(err, mta), true
		}
		if err := c.flush(); err != nil {
			return classify(err, mta), true
		}
		if _, err := c.expect("MAIL FROM", 2); err != nil {
			mailErr = err
			if !isReply(err) {
				return classify(err, mta), true
			}
		}
	}
	for _, r := range batch {
		if !pipelining {
			if err := c.send("RCPT TO:<%s>", r.Address); err != nil {
				return classify(err, mta), false
			}
			if err := c.flush(); err != nil {
				return classify(err, mta), false
			}
		}
		_, err := c.expect("RCPT TO", 2)
		switch {
		case err == nil && mailErr == nil:
			accepted = append(accepted, r)
		case err == nil:
			// Accepted after a refused MAIL: the server is confused.
		case !isReply(err):
			return classify(err, mta), false
		default:
			res[r.ID] = classify(err, mta)
		}
	}
	if mailErr != nil {
		// Pipelined and MAIL refused: read the DATA reply, then report.
		if r, err := c.expect("DATA", 3); err == nil || (r != nil && r.code/100 == 3) {
			c.send(".")
			c.flush()
			c.expect("end of DATA", 2)
		} else if !isReply(err) {
			return classify(err, mta), false
		}
		f := classify(mailErr, mta)
		for _, r := range batch {
			delete(res, r.ID)
		}
		c.cmd("RSET", 2, "RSET")
		return f, !f.perm
	}
	if pipelining {
		r, err := c.expect("DATA", 3)
		if err != nil && !isReply(err) {
			return classify(err, mta), false
		}
		if len(accepted) == 0 {
			if err == nil || (r != nil && r.code/100 == 3) {
				// RFC 2920 §3.1: DATA accepted without recipients; end it.
				c.send(".")
				c.flush()
				c.expect("end of DATA", 2)
			}
			c.cmd("RSET", 2, "RSET")
			return nil, false
		}
		if err != nil {
			fail := classify(err, mta)
			for _, r := range accepted {
				res[r.ID] = fail
			}
			c.cmd("RSET", 2, "RSET")
			return nil, false
		}
	} else {
		if len(accepted) == 0 {
			c.cmd("RSET", 2, "RSET")
			return nil, false
		}
		if _, err := c.cmd("DATA", 3, "DATA"); err != nil {
			fail := classify(err, mta)
			for _, r := range accepted {
				res[r.ID] = fail
			}
			if !isReply(err) {
				return fail, false
			}
			c.cmd("RSET", 2, "RSET")
			return nil, false
		}
	}
	body, err := q.st.OpenQueued(ctx, m.ID)
	if err != nil {
		// Deleted by the operator meanwhile: abandon the transaction.
		return tempFail("4.3.0", "message no longer readable: %v", err), false
	}
	r, err := c.writeData(body)
	body.Close()
	if err != nil {
		fail := classify(err, mta)
		for _, rc := range accepted {
			res[rc.ID] = fail
		}
		if !isReply(err) {
			return fail, false
		}
		return nil, false
	}
	// The next hop has the message: record it before anything else.
	ids := make([]int64, len(accepted))
	for i, rc := range accepted {
		ids[i] = rc.ID
		delete(res, rc.ID)
	}
	a := storage.Attempt{RemoteMTA: mta, StatusCode: r.status(), Reply: r.String()}
	if err := q.st.MarkSent(context.WithoutCancel(ctx), ids, a); err != nil {
		q.log.Error("record sent recipients; they may be sent again", "queue_id", m.ID, "err", err)
	}
	for _, rc := range accepted {
		q.log.Info("delivery", "queue_id", m.ID, "rcpt", rc.Address, "result", "sent", "host", mta, "tls", c.tls, "reply", a.Reply)
	}
	return nil, false
}

func isReply(err error) bool {
	var re *replyError
	return errors.As(err, &re)
}

// classify turns an error of a session into a failure: an SMTP reply keeps
// its class and codes (RFC 5321 §4.2.1: 4yz temporary, 5yz permanent);
// anything else (lost connection, timeout, garbage) is temporary.
func classify(err error, mta string) *failure {
	var re *replyError
	if errors.As(err, &re) {
		f := &failure{Attempt: storage.Attempt{RemoteMTA: mta, StatusCode: re.r.status(), Reply: re.r.String()}}
		switch re.r.code / 100 {
		case 5:
			f.perm = true
		case 4:
		default:
			// A 2xx or 3xx where the other was due.
			f.StatusCode = "4.5.0"
		}
		return f
	}
	if errors.Is(err, errProtocol) {
		return tempFail("4.5.0", "%s: %s", mta, err)
	}
	return tempFail("4.4.2", "%s: %s", mta, netReason(err))
}

// netReason is a network error in a few words, without Go's prefixes.
func netReason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return strings.TrimPrefix(oe.Err.Error(), "connect: ")
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}
