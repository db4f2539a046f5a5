package queue

import (
	"context"
	"errors"
	"io"
	"strings"

	"pombo/dkim"
	"pombo/storage"
)

// signer returns the function storage calls at enqueue time to DKIM-sign a
// message: with the key of the domain of its From: address (RFC 7489
// alignment for DMARC), else of the envelope sender's domain, else not at
// all. A key that cannot be used is logged and the message goes unsigned:
// mail keeps flowing while the operator fixes it.
func (q *Queue) signer(ctx context.Context, sender string) func(io.Reader, *storage.Envelope) ([]byte, error) {
	return func(msg io.Reader, env *storage.Envelope) ([]byte, error) {
		var domains []string
		if len(env.From) > 0 && env.From[0].Host != "" {
			domains = append(domains, strings.ToLower(env.From[0].Host))
		}
		if at := strings.LastIndexByte(sender, '@'); at >= 0 {
			if d := strings.ToLower(sender[at+1:]); len(domains) == 0 || domains[0] != d {
				domains = append(domains, d)
			}
		}
		for _, d := range domains {
			k, err := q.st.DKIMKeyOf(ctx, d)
			if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrBadAddress) {
				continue
			} else if err != nil {
				return nil, err
			}
			key, err := dkim.ParseKey(k.PrivateKey)
			if err != nil {
				q.log.Error("DKIM key unusable; message sent unsigned", "domain", d, "err", err)
				return nil, nil
			}
			sig, err := dkim.Sign(msg, d, k.Selector, key)
			if err != nil {
				q.log.Error("DKIM signing failed; message sent unsigned", "domain", d, "err", err)
				return nil, nil
			}
			return []byte(sig), nil
		}
		return nil, nil
	}
}
