package pop3

import (
	"fmt"
	"strconv"

	"pombo/storage"
)

// maildrop is the session's view of INBOX, read at login (RFC 1939 §4):
// message n of the session is msgs[n-1] until QUIT.
type maildrop struct {
	mailboxID   int64
	uidValidity uint32
	msgs        []message
}

type message struct {
	id      int64 // storage message id, for OpenMessageLoaded
	uid     uint32
	size    int64 // octets as stored (CRLF), before dot-stuffing
	deleted bool  // marked by DELE
}

// uidl is the unique-id listing of a message (RFC 1939 §7): 1 to 70
// characters in 0x21..0x7E. See the package documentation for why.
func (d *maildrop) uidl(m *message) string {
	return strconv.FormatUint(uint64(d.uidValidity), 10) + "." + strconv.FormatUint(uint64(m.uid), 10)
}

// stat counts the messages not marked as deleted, and their octets.
func (d *maildrop) stat() (n int, size int64) {
	for i := range d.msgs {
		if !d.msgs[i].deleted {
			n++
			size += d.msgs[i].size
		}
	}
	return n, size
}

// get returns the message with number arg, which must exist and not be
// marked as deleted.
func (d *maildrop) get(arg string) (int, *message, error) {
	n, ok := parseNumber(arg)
	if !ok {
		return 0, nil, errSyntax
	}
	if n < 1 || n > int64(len(d.msgs)) {
		return 0, nil, errNoSuchMsg
	}
	m := &d.msgs[n-1]
	if m.deleted {
		return 0, nil, errMsgDeleted
	}
	return int(n), m, nil
}

// login opens the maildrop of an authenticated account and enters
// TRANSACTION state.
func (c *conn) login(account string) error {
	st := c.srv.opts.Store
	u, err := st.UserByAddress(c.ctx, account)
	if err != nil {
		// Deleted between the password check and now, or storage trouble.
		return temporary("cannot open maildrop", err)
	}
	if !c.srv.lock(u.ID, c) {
		c.log.Info("pop3 maildrop in use", "user", account)
		return errInUse
	}
	c.userID = u.ID // from here the lock is released when the session ends
	drop, err := c.readMaildrop(u.ID)
	if err != nil {
		c.srv.unlock(u.ID, c)
		c.userID = 0
		return temporary("cannot open maildrop", err)
	}
	c.account, c.drop = account, drop
	c.state = stateTransaction
	c.log = c.log.With("user", account)
	n, size := drop.stat()
	c.log.Info("pop3 login", "tls", c.tls, "messages", n, "octets", size)
	c.ok("maildrop has %d messages (%d octets)", n, size)
	return nil
}

func (c *conn) readMaildrop(userID int64) (*maildrop, error) {
	st := c.srv.opts.Store
	mb, err := st.MailboxByName(c.ctx, userID, "INBOX")
	if err != nil {
		return nil, fmt.Errorf("find INBOX: %w", err)
	}
	d := &maildrop{mailboxID: mb.ID, uidValidity: mb.UIDValidity, msgs: make([]message, 0, mb.Messages)}
	err = st.Messages(c.ctx, mb.ID, nil, func(m *storage.Message) error {
		d.msgs = append(d.msgs, message{id: m.ID, uid: m.UID, size: m.Size})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list INBOX: %w", err)
	}
	return d, nil
}

// cmdStat: RFC 1939 §5.
func (c *conn) cmdStat(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	n, size := c.drop.stat()
	c.ok("%d %d", n, size)
	return nil
}

// cmdList: RFC 1939 §5, with or without a message number.
func (c *conn) cmdList(cmd *command) error {
	return c.listing(cmd, func(m *message) string { return strconv.FormatInt(m.size, 10) })
}

// cmdUidl: RFC 1939 §7.
func (c *conn) cmdUidl(cmd *command) error {
	return c.listing(cmd, c.drop.uidl)
}

func (c *conn) listing(cmd *command, value func(*message) string) error {
	switch len(cmd.args) {
	case 0:
		n, size := c.drop.stat()
		c.ok("%d messages (%d octets)", n, size)
		for i := range c.drop.msgs {
			if m := &c.drop.msgs[i]; !m.deleted {
				c.reply(strconv.Itoa(i+1) + " " + value(m))
			}
		}
		c.reply(".")
		return nil
	case 1:
		n, m, err := c.drop.get(cmd.args[0])
		if err != nil {
			return err
		}
		c.ok("%d %s", n, value(m))
		return nil
	}
	return errSyntax
}

// cmdDele marks a message; QUIT removes it (RFC 1939 §5).
func (c *conn) cmdDele(cmd *command) error {
	if len(cmd.args) != 1 {
		return errSyntax
	}
	n, m, err := c.drop.get(cmd.args[0])
	if err != nil {
		return err
	}
	m.deleted = true
	c.ok("message %d deleted", n)
	return nil
}

// cmdRset unmarks every message (RFC 1939 §5).
func (c *conn) cmdRset(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	for i := range c.drop.msgs {
		c.drop.msgs[i].deleted = false
	}
	n, size := c.drop.stat()
	c.ok("maildrop has %d messages (%d octets)", n, size)
	return nil
}

func (c *conn) cmdNoop(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	c.reply("+OK")
	return nil
}

// cmdQuit ends the session. In TRANSACTION state it first enters UPDATE and
// removes the marked messages (RFC 1939 §6); the +OK goes out only once the
// removal is durable.
func (c *conn) cmdQuit(cmd *command) error {
	if len(cmd.args) != 0 {
		return errSyntax
	}
	c.quit = true
	if c.state == stateAuthorization {
		c.ok("%s POP3 server signing off", c.srv.opts.Hostname)
		return nil
	}
	c.state = stateUpdate
	var uids []uint32
	for _, m := range c.drop.msgs {
		if m.deleted {
			uids = append(uids, m.uid)
		}
	}
	if len(uids) > 0 {
		removed, err := c.srv.opts.Store.Remove(c.ctx, c.drop.mailboxID, uids)
		if err != nil {
			return &Error{Code: codeSysTemp, Text: "some deleted messages not removed", Err: err, Close: true}
		}
		// Fewer when IMAP expunged some of them meanwhile: gone all the same.
		c.log.Info("pop3 update", "marked", len(uids), "removed", len(removed))
	}
	left := len(c.drop.msgs) - len(uids)
	c.ok("%s POP3 server signing off (%d messages left)", c.srv.opts.Hostname, left)
	return nil
}
