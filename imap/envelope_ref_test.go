package imap

import (
	"fmt"
	"net"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"pombo/storage"
)

// ServeSlowEnvelopes serves IMAP on l from the store of o, with FETCH
// writing ENVELOPE (and UID) the plain way: each stored envelope decoded by
// encoding/json (Store.Meta) and converted by toEnvelope, then handed to
// imapserver as it is. Everything else is the real session. Tests compare
// its bytes with the real server's (envelope.go's shortcuts must not show).
func ServeSlowEnvelopes(o Options, l net.Listener) error {
	s := New(o)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess, g, err := s.newSession(c)
			if err != nil {
				return nil, nil, err
			}
			return slowEnvelopes{sess.(guardedSession)}, g, nil
		},
		Caps:         caps(),
		InsecureAuth: true,
	})
	return srv.Serve(l)
}

type slowEnvelopes struct{ guardedSession }

func (s slowEnvelopes) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	seqs, uids := s.resolve(set)
	if len(uids) == 0 {
		return nil
	}
	st := s.srv.opts.Store
	rows, err := st.FetchRowsOf(s.ctx, s.sel.id, uids, storage.FetchContent)
	if err != nil {
		return err
	}
	if len(rows) != len(uids) {
		return fmt.Errorf("%d rows for %d UIDs: the test's mailbox changed", len(rows), len(uids))
	}
	for i := range rows {
		meta, err := st.Meta(s.ctx, rows[i].ID)
		if err != nil {
			return err
		}
		rw := w.CreateMessage(seqs[i])
		if o.UID {
			rw.WriteUID(imap.UID(rows[i].UID))
		}
		if o.Envelope {
			rw.WriteEnvelope(toEnvelope(&meta.Envelope))
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}
