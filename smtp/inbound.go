package smtp

import (
	"context"
	"errors"

	"pombo/storage"
)

// NewInbound returns the inbound (MX, port 25) server: no AUTH, and
// recipients only at local domains, so it is never an open relay.
func NewInbound(opts Options) *Server {
	return newServer("smtp", opts, inbound{})
}

// inbound is the port 25 policy.
type inbound struct{}

// mail accepts any sender: port 25 takes mail from the whole Internet (SPF
// and friends would go here).
func (inbound) mail(context.Context, *session, *txn) error { return nil }

// rcpt accepts local users, aliases, catch-alls and plus-addresses
// (storage.Resolve decides), refuses everything else.
func (inbound) rcpt(ctx context.Context, se *session, t *txn, to string) ([]storage.Target, []string, error) {
	s := se.s
	targets, err := s.opts.Store.Resolve(ctx, to)
	switch {
	case errors.Is(err, storage.ErrUnknownDomain):
		return nil, nil, errRelayDenied
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, errNoSuchUser
	case errors.Is(err, storage.ErrBadAddress):
		return nil, nil, reply(501, 5, 1, 3, "Bad recipient address syntax")
	case err != nil:
		return nil, nil, err
	}
	local, remote := splitTargets(targets)
	if len(remote) > 0 && s.opts.Enqueuer == nil {
		// Refused whole, local targets included: accepting them alone
		// would lose the forwarded copy, and a retry after the queue
		// exists delivers all of them once.
		s.log.Warn("smtp recipient refused: forwarding needs the outbound queue",
			append(se.c.logAttrs(), "rcpt", to, "remote", remote)...)
		return nil, nil, errForwarding
	}
	for _, tg := range local {
		if err := s.checkQuota(ctx, tg.UserID, t.size); err != nil {
			return nil, nil, err
		}
	}
	return local, remote, nil
}

// splitTargets separates local mailboxes from remote addresses (the
// outside targets of aliases, or the recipients of a submission).
func splitTargets(targets []storage.Target) (local []storage.Target, remote []string) {
	for _, tg := range targets {
		if tg.UserID == 0 {
			remote = append(remote, tg.Address)
		} else {
			local = append(local, tg)
		}
	}
	return local, remote
}
