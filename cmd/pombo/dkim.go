package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"pombo/dkim"
	"pombo/storage"
)

// dkimCommand is `pombo dkim`: the signing keys of local domains. Mail
// submitted from a domain with a key is signed when it is queued.
func dkimCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "dkim",
		Usage: "manage DKIM signing keys",
		Subcommands: []*cli.Command{
			{Name: "keygen", Usage: "make the signing key of a local domain and print its DNS record",
				ArgsUsage: "DOMAIN [--selector S]",
				Flags: []cli.Flag{&cli.StringFlag{Name: "selector", Value: dkim.DefaultSelector,
					Usage: "DNS selector of the key (the record is S._domainkey.DOMAIN)"}},
				Action: e.dkimKeygen},
			{Name: "show", Usage: "print the DNS record of a domain's key", ArgsUsage: "DOMAIN", Action: e.dkimShow},
		},
	}
}

// domainAndSelector reads DOMAIN and a --selector given before or after it
// (urfave/cli stops reading flags at the first argument).
func domainAndSelector(c *cli.Context) (domain, selector string, err error) {
	a := c.Args().Slice()
	selector = c.String("selector")
	usage := fmt.Errorf("usage: pombo %s %s", c.Command.FullName(), c.Command.ArgsUsage)
	switch {
	case len(a) == 1:
	case len(a) == 3 && (a[1] == "--selector" || a[1] == "-selector"):
		selector = a[2]
	case len(a) == 2 && strings.HasPrefix(a[1], "--selector="):
		selector = strings.TrimPrefix(a[1], "--selector=")
	default:
		return "", "", usage
	}
	domain, err = storage.NormalizeDomain(a[0])
	if err != nil {
		return "", "", err
	}
	if !dkim.ValidSelector(selector) {
		return "", "", fmt.Errorf("selector %q is not valid: use letters, digits, '-' and '.'", selector)
	}
	return domain, selector, nil
}

func (e *env) dkimKeygen(c *cli.Context) error {
	domain, selector, err := domainAndSelector(c)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if ok, err := st.IsLocalDomain(c.Context, domain); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("domain %s is not local: add it first with pombo domain add %s", domain, domain)
	}
	if k, err := st.DKIMKeyOf(c.Context, domain); err == nil {
		return fmt.Errorf("domain %s already has a DKIM key (selector %s); pombo dkim show %s prints its record", domain, k.Selector, domain)
	}
	pemKey, err := dkim.GenerateKey()
	if err != nil {
		return err
	}
	if err := st.AddDKIMKey(c.Context, domain, selector, pemKey); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("domain %s already has a DKIM key", domain)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "DKIM key for %s created; mail from %s is signed from now on.\nPublish this TXT record:\n\n", domain, domain)
	return e.printRecord(domain, selector, pemKey)
}

func (e *env) dkimShow(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	k, err := st.DKIMKeyOf(c.Context, a[0])
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("domain %s has no DKIM key: make one with pombo dkim keygen %s", a[0], a[0])
		}
		return err
	}
	return e.printRecord(k.Domain, k.Selector, k.PrivateKey)
}

func (e *env) printRecord(domain, selector, pemKey string) error {
	key, err := dkim.ParseKey(pemKey)
	if err != nil {
		return err
	}
	txt, err := dkim.TXTRecord(key)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "name:  %s\nvalue: %s\n\nin a zone file:\n%s\n", dkim.RecordName(domain, selector), txt, dkim.ZoneLine(domain, selector, txt))
	return nil
}
