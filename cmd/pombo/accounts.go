package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"pombo/auth"
	"pombo/storage"
)

func (e *env) domainAdd(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AddDomain(c.Context, a[0]); err != nil {
		return err
	}
	d, _ := storage.NormalizeDomain(a[0])
	fmt.Fprintf(e.stdout, "domain %s added\n", d)
	return nil
}

func (e *env) domainDel(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteDomain(c.Context, a[0]); err != nil {
		if errors.Is(err, storage.ErrDomainNotEmpty) {
			return fmt.Errorf("%w (delete them first with pombo user del)", err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "domain %s deleted\n", strings.ToLower(a[0]))
	return nil
}

func (e *env) domainList(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := st.Domains(c.Context)
	if err != nil {
		return err
	}
	return printList(e, c.Bool("json"), ds, "DOMAIN\tUSERS", func(d storage.Domain) string {
		return fmt.Sprintf("%s\t%d", d.Name, d.Users)
	})
}

// readPassword gets a new password: the first line of standard input with
// --password-stdin, else typed twice without echo on a terminal.
func (e *env) readPassword(c *cli.Context) (string, error) {
	var pw string
	if c.Bool("password-stdin") {
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("standard input is not a terminal: use --password-stdin")
		}
		fmt.Fprint(e.stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(e.stderr, "Password (again): ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords do not match")
		}
		pw = string(p1)
	}
	if err := auth.ValidatePassword(pw); err != nil {
		return "", err
	}
	return pw, nil
}

func (e *env) userAdd(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	local, domain, err := storage.NormalizeAddress(a[0])
	if err != nil {
		return err
	}
	st, cfg, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	// Check the domain before asking for a password.
	if ok, err := st.IsLocalDomain(c.Context, domain); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("domain %s is not local: add it first with pombo domain add %s", domain, domain)
	}
	if _, err := st.UserByAddress(c.Context, local+"@"+domain); err == nil {
		return fmt.Errorf("user %s@%s already exists", local, domain)
	}
	pw, err := e.readPassword(c)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	u, err := st.AddUser(c.Context, local+"@"+domain, hash, int64(cfg.UserDefaults.Quota))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added\n", u.Address)
	return nil
}

func (e *env) userPasswd(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByAddress(c.Context, a[0])
	if err != nil {
		return err
	}
	pw, err := e.readPassword(c)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	if err := st.SetPassword(c.Context, u.Address, hash); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "password of %s changed\n", u.Address)
	return nil
}

func (e *env) userDel(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByAddress(c.Context, a[0])
	if err != nil {
		return err
	}
	if !c.Bool("yes") {
		if err := e.confirm(fmt.Sprintf("Delete %s and all of its mail (%d bytes)?", u.Address, u.UsedBytes)); err != nil {
			return err
		}
	}
	if err := st.DeleteUser(c.Context, u.Address); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s deleted\n", u.Address)
	return nil
}

// confirm asks a yes/no question on a terminal; without one it refuses.
func (e *env) confirm(q string) error {
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return errors.New("standard input is not a terminal: add --yes to confirm")
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", q)
	line, _ := bufio.NewReader(f).ReadString('\n')
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		return errAborted
	}
	return nil
}

func (e *env) userList(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := st.Users(c.Context)
	if err != nil {
		return err
	}
	return printList(e, c.Bool("json"), us, "USER\tUSED\tQUOTA", func(u storage.User) string {
		q := "unlimited"
		if u.QuotaBytes > 0 {
			q = humanSize(u.QuotaBytes)
		}
		return fmt.Sprintf("%s\t%s\t%s", u.Address, humanSize(u.UsedBytes), q)
	})
}

func (e *env) aliasAdd(c *cli.Context) error {
	a, err := args(c, 2, -1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.AddAlias(c.Context, a[0], a[1:]); err != nil {
		if errors.Is(err, storage.ErrUnknownDomain) {
			return fmt.Errorf("%w: add it first with pombo domain add", err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "alias %s -> %s added\n", strings.ToLower(a[0]), strings.ToLower(strings.Join(a[1:], ", ")))
	return nil
}

func (e *env) aliasDel(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteAlias(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "alias %s deleted\n", strings.ToLower(a[0]))
	return nil
}

func (e *env) aliasList(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	as, err := st.Aliases(c.Context)
	if err != nil {
		return err
	}
	return printList(e, c.Bool("json"), as, "ALIAS\tTARGETS", func(a storage.Alias) string {
		return fmt.Sprintf("%s\t%s", a.Address, strings.Join(a.Targets, ", "))
	})
}

func (e *env) mailboxList(c *cli.Context) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByAddress(c.Context, a[0])
	if err != nil {
		return err
	}
	mbs, err := st.Mailboxes(context.Background(), u.ID)
	if err != nil {
		return err
	}
	return printList(e, c.Bool("json"), mbs, "MAILBOX\tMESSAGES\tUNSEEN\tSIZE\tSPECIAL-USE", func(m storage.Mailbox) string {
		return fmt.Sprintf("%s\t%d\t%d\t%s\t%s", m.Name, m.Messages, m.Unseen, humanSize(m.Size), m.SpecialUse)
	})
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printList prints items as JSON (an empty list as [], never null) or as a
// table with a header line and one row per item.
func printList[T any](e *env, asJSON bool, items []T, header string, row func(T) string) error {
	if asJSON {
		if items == nil {
			items = []T{}
		}
		return e.printJSON(items)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
