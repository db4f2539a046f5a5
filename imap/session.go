package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"pombo/auth"
	"pombo/storage"
)

// session is the state of one connection. imapserver calls its methods from
// one goroutine at a time (IDLE runs in another goroutine while the first
// only waits for DONE).
type session struct {
	srv   *Server
	conn  *imapserver.Conn
	guard *guardConn // nil on a listener not wrapped by WrapListener
	log   *slog.Logger
	ip    netip.Addr

	ctx    context.Context
	cancel context.CancelFunc

	userID  int64 // 0 until logged in
	account string
	sub     *storage.Subscription
	sel     *selected
}

var (
	_ imapserver.SessionIMAP4rev2   = guardedSession{}
	_ imapserver.SessionSASL        = guardedSession{}
	_ imapserver.SessionAppendLimit = guardedSession{}
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ctx, cancel := context.WithCancel(context.Background())
	nc := c.NetConn()
	ss := &session{
		srv:    s,
		conn:   c,
		guard:  guardOf(nc),
		ip:     auth.IPFromAddr(nc.RemoteAddr()),
		ctx:    ctx,
		cancel: cancel,
	}
	ss.guard.attach(c.Bye)
	ss.log = s.log.With("proto", "imap", "remote", nc.RemoteAddr().String())
	return guardedSession{ss}, nil, nil
}

// guardedSession is the session as imapserver sees it: IDLE pauses the
// autologout timer, since IDLE has a limit of its own.
type guardedSession struct{ *session }

func (s guardedSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.guard.idle(true)
	defer s.guard.idle(false)
	return s.session.Idle(w, stop)
}

func (s *session) Close() error {
	s.cancel()
	if s.sub != nil {
		s.sub.Close()
	}
	if s.userID != 0 {
		s.srv.releaseUser(s.userID)
	}
	return nil
}

// isTLS reports whether the connection is encrypted now.
func (s *session) isTLS() bool {
	_, ok := s.conn.NetConn().(*tls.Conn)
	return ok
}

// Errors sent to clients. Internal causes go to the log only.
var (
	errThrottled = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Too many failed logins, try again later"}
	errTemporary = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary server failure, try again later"}
	errTooMany   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: "Too many connections for this user"}
	errPrivacy   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "TLS is required to log in"}
	errReadOnly  = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only"}
)

// plaintextOK double-checks what imapserver already enforces with
// LOGINDISABLED: passwords only over TLS or from an allowed loopback.
func (s *session) plaintextOK() bool {
	if s.isTLS() {
		return true
	}
	return s.srv.opts.AllowPlaintextFromLoopback && s.ip.IsLoopback()
}

func (s *session) Login(username, password string) error {
	if !s.plaintextOK() {
		return errPrivacy
	}
	account, err := s.srv.opts.Auth.Authenticate(s.ctx, "imap", s.ip, username, password)
	if err != nil {
		return authError(err)
	}
	return s.loggedIn(account)
}

func authError(err error) error {
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrMalformed):
		return imapserver.ErrAuthFailed
	case errors.Is(err, auth.ErrThrottled):
		return errThrottled
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		return err
	}
	return errTemporary
}

func (s *session) loggedIn(account string) error {
	u, err := s.srv.opts.Store.UserByAddress(s.ctx, account)
	if err != nil {
		s.log.Error("look up user after login", "user", account, "err", err)
		return errTemporary
	}
	if !s.srv.acquireUser(u.ID) {
		s.log.Warn("too many connections for user", "user", account)
		return errTooMany
	}
	s.userID, s.account = u.ID, account
	s.sub = s.srv.opts.Store.Subscribe(u.ID)
	s.log = s.log.With("user", account)
	s.log.Info("login")
	s.guard.loggedIn()
	s.srv.warmInbox(u.ID)
	return nil
}

func (s *session) AuthenticateMechanisms() []string { return auth.Mechanisms() }

func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if !s.plaintextOK() {
		return nil, errPrivacy
	}
	srv, err := s.srv.opts.Auth.NewSASLServer(s.ctx, "imap", s.ip, mech, s.loggedIn)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Unsupported SASL mechanism"}
	}
	return saslErrors{srv}, nil
}

// saslErrors maps authentication errors to IMAP responses.
type saslErrors struct{ sasl.Server }

func (w saslErrors) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := w.Server.Next(resp)
	if err != nil {
		if errors.Is(err, sasl.ErrUnexpectedClientResponse) {
			err = auth.ErrMalformed
		}
		return nil, true, authError(err)
	}
	return ch, done, nil
}

func (s *session) AppendLimit() uint32 {
	if s.userID == 0 {
		// APPEND before login is refused by imapserver only after it has
		// accepted the literal: refuse any literal here instead.
		return 0
	}
	return uint32(s.srv.opts.MaxMessageSize)
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{
		Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: storage.MailboxDelim}},
	}, nil
}

// storeError turns a storage error into a response, logging what the client
// must not see.
func (s *session) storeError(op string, err error) error {
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.Is(err, storage.ErrNotFound):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox or message"}
	case errors.Is(err, storage.ErrExists):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	case errors.Is(err, storage.ErrInboxImmutable):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	case errors.Is(err, storage.ErrMailboxName):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
	case errors.Is(err, storage.ErrOverQuota):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded"}
	case errors.Is(err, storage.ErrSearchTooComplex):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeLimit, Text: "Search criteria nested too deeply"}
	case errors.Is(err, context.Canceled):
		return errTemporary
	}
	s.log.Error("imap command failed", "op", op, "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal server error"}
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	use := ""
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 || !knownSpecialUse(options.SpecialUse[0]) {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCode("USEATTR"), Text: "Unsupported special-use attribute"}
		}
		use = string(options.SpecialUse[0])
	}
	name = strings.TrimSuffix(name, string(storage.MailboxDelim)) // RFC 9051 §6.3.4
	if strings.EqualFold(name, "INBOX") {
		return s.storeError("create", storage.ErrExists)
	}
	return s.storeError("create", s.srv.opts.Store.CreateMailbox(s.ctx, s.userID, name, use))
}

func knownSpecialUse(a imap.MailboxAttr) bool {
	switch a {
	case imap.MailboxAttrAll, imap.MailboxAttrArchive, imap.MailboxAttrDrafts, imap.MailboxAttrFlagged,
		imap.MailboxAttrJunk, imap.MailboxAttrSent, imap.MailboxAttrTrash:
		return true
	}
	return false
}

func (s *session) Delete(name string) error {
	return s.storeError("delete", s.srv.opts.Store.DeleteMailbox(s.ctx, s.userID, name))
}

func (s *session) Rename(from, to string, _ *imap.RenameOptions) error {
	return s.storeError("rename", s.srv.opts.Store.RenameMailbox(s.ctx, s.userID, from, to))
}

func (s *session) Subscribe(name string) error {
	return s.storeError("subscribe", s.srv.opts.Store.SetSubscribed(s.ctx, s.userID, name, true))
}

func (s *session) Unsubscribe(name string) error {
	err := s.srv.opts.Store.SetSubscribed(s.ctx, s.userID, name, false)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrMailboxName) {
		// RFC 9051 §6.3.8 allows unsubscribing a name that does not exist;
		// we keep no subscriptions apart from mailboxes.
		return nil
	}
	return s.storeError("unsubscribe", err)
}

func (s *session) mailbox(name string) (*storage.Mailbox, error) {
	mb, err := s.srv.opts.Store.MailboxByName(s.ctx, s.userID, name)
	if err != nil {
		return nil, s.storeError("mailbox", err)
	}
	return mb, nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	mb, err := s.mailbox(name)
	if err != nil {
		return nil, err
	}
	return s.statusData(mb, options)
}

func (s *session) statusData(mb *storage.Mailbox, o *imap.StatusOptions) (*imap.StatusData, error) {
	// One allocation for the values the answer points to.
	v := &struct {
		messages, unseen, recent, deleted, appendLimit uint32
		size, deletedStorage                           int64
	}{
		messages:    uint32(mb.Messages),
		unseen:      uint32(mb.Unseen),
		appendLimit: uint32(s.srv.opts.MaxMessageSize),
		size:        mb.Size,
	}
	d := &imap.StatusData{
		Mailbox:        mb.Name,
		UIDNext:        imap.UID(mb.UIDNext),
		UIDValidity:    mb.UIDValidity,
		NumMessages:    &v.messages,
		NumUnseen:      &v.unseen,
		NumRecent:      &v.recent,
		Size:           &v.size,
		AppendLimit:    &v.appendLimit,
		DeletedStorage: &v.deletedStorage,
	}
	if o.NumDeleted {
		n, err := s.srv.opts.Store.CountDeleted(s.ctx, mb.ID)
		if err != nil {
			return nil, s.storeError("status", err)
		}
		v.deleted = uint32(n)
		d.NumDeleted = &v.deleted
	}
	return d, nil
}

// List implements LIST with LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC
// 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root (RFC 9051 §6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: storage.MailboxDelim})
	}
	mbs, err := s.srv.opts.Store.Mailboxes(s.ctx, s.userID)
	if err != nil {
		return s.storeError("list", err)
	}
	match := newListMatcher(ref, patterns)
	// Parents of some mailbox, and parents of a subscribed one; nil while
	// the hierarchy is flat, as it often is.
	var hasChildren, subscribedChild map[string]bool
	for _, mb := range mbs {
		for i := strings.LastIndexByte(mb.Name, storage.MailboxDelim); i > 0; i = strings.LastIndexByte(mb.Name[:i], storage.MailboxDelim) {
			if hasChildren == nil {
				hasChildren, subscribedChild = make(map[string]bool), make(map[string]bool)
			}
			hasChildren[mb.Name[:i]] = true
			if mb.Subscribed {
				subscribedChild[mb.Name[:i]] = true
			}
		}
	}
	// imapserver writes a ListData out before WriteList returns and keeps
	// nothing of it: one serves every line.
	var d imap.ListData
	attrs := make([]imap.MailboxAttr, 0, 3)
	for i := range mbs {
		mb := &mbs[i]
		if !match.match(mb.Name) {
			continue
		}
		var childInfo *imap.ListDataChildInfo
		if o.SelectSubscribed && !mb.Subscribed {
			if o.SelectRecursiveMatch && subscribedChild[mb.Name] {
				childInfo = &imap.ListDataChildInfo{Subscribed: true}
			} else {
				continue
			}
		}
		if o.SelectSpecialUse && mb.SpecialUse == "" {
			continue
		}
		attrs = attrs[:0]
		if hasChildren[mb.Name] {
			attrs = append(attrs, imap.MailboxAttrHasChildren)
		} else {
			attrs = append(attrs, imap.MailboxAttrHasNoChildren)
		}
		if mb.Subscribed && (o.SelectSubscribed || o.ReturnSubscribed) {
			attrs = append(attrs, imap.MailboxAttrSubscribed)
		}
		if mb.SpecialUse != "" {
			attrs = append(attrs, imap.MailboxAttr(mb.SpecialUse))
		}
		d = imap.ListData{Attrs: attrs, Delim: storage.MailboxDelim, Mailbox: mb.Name, ChildInfo: childInfo}
		if o.ReturnStatus != nil {
			st, err := s.statusData(mb, o.ReturnStatus)
			if err != nil {
				return err
			}
			d.Status = st
		}
		if err := w.WriteList(&d); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Append(name string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	mb, err := s.srv.opts.Store.MailboxByName(s.ctx, s.userID, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	} else if err != nil {
		return nil, s.storeError("append", err)
	}
	flags, kws := splitFlags(o.Flags)
	ds, err := s.srv.opts.Store.Deliver(s.ctx, r, []storage.Recipient{{UserID: s.userID, MailboxID: mb.ID}},
		storage.DeliverOptions{InternalDate: o.Time, Flags: flags, Keywords: kws})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return nil, err // the connection broke mid-literal
		}
		return nil, s.storeError("append", err)
	}
	return &imap.AppendData{UID: imap.UID(ds[0].UID), UIDValidity: mb.UIDValidity}, nil
}

// splitFlags separates system flags from keywords; \Recent cannot be set
// and unknown system flags are ignored.
func splitFlags(fl []imap.Flag) (storage.Flags, []string) {
	var f storage.Flags
	var kws []string
	for _, x := range fl {
		if strings.HasPrefix(string(x), `\`) {
			if b, ok := storage.ParseFlag(string(x)); ok {
				f |= b
			}
			continue
		}
		if x != "" && len(x) <= 200 {
			kws = append(kws, string(x))
		}
	}
	return f, kws
}

func flagList(f storage.Flags, kws []string) []imap.Flag {
	out := make([]imap.Flag, 0, 5+len(kws))
	for _, n := range f.Names() {
		out = append(out, imap.Flag(n))
	}
	for _, k := range kws {
		out = append(out, imap.Flag(k))
	}
	return out
}
