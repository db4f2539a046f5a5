package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"pombo/storage"
)

// queueCommand is `pombo queue`: the outbound queue as the running server
// sees it (the database is shared; the server notices retries and
// deletions at its next look, within 30 seconds).
func queueCommand(e *env) *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print JSON"}
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect and manage the outbound queue",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list queued messages, one line per recipient", Flags: []cli.Flag{jsonFlag}, Action: e.queueList},
			{Name: "show", Usage: "show a queued message and its recipients", ArgsUsage: "ID", Flags: []cli.Flag{jsonFlag}, Action: e.queueShow},
			{Name: "retry", Usage: "try a queued message (or --all) again now", ArgsUsage: "ID|--all",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "every queued message"}},
				Action: e.queueRetry},
			{Name: "del", Usage: "delete a queued message without notifying its sender", ArgsUsage: "ID", Action: e.queueDel},
		},
	}
}

func queueID(c *cli.Context) (int64, error) {
	a, err := args(c, 1, 1)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(a[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("queue id must be a positive number, not %q", a[0])
	}
	return id, nil
}

func (e *env) queueList(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	msgs, err := st.QueueList(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if msgs == nil {
			msgs = []storage.QueuedMessage{}
		}
		return e.printJSON(msgs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tQUEUED\tSIZE\tFROM\tTO\tSTATUS\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, m := range msgs {
		for i, r := range m.Recipients {
			id, queued, size, from := strconv.FormatInt(m.ID, 10), when(m.Created), humanSize(m.Size), sender(m.Sender)
			if i > 0 {
				id, queued, size, from = "", "", "", ""
			}
			next := ""
			if r.Status == storage.QueuePending {
				next = when(r.NextAttempt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, queued, size, from, r.Address, r.Status, r.Attempts, next, clip(r.LastError, 60))
		}
	}
	return tw.Flush()
}

func (e *env) queueShow(c *cli.Context) error {
	id, err := queueID(c)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := st.QueueItem(c.Context, id)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return e.printJSON(m)
	}
	user := "-"
	if m.UserID != 0 {
		if u, err := st.UserByID(c.Context, m.UserID); err == nil {
			user = u.Address
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%d\n", m.ID)
	fmt.Fprintf(tw, "from:\t%s\n", sender(m.Sender))
	fmt.Fprintf(tw, "user:\t%s\n", user)
	fmt.Fprintf(tw, "queued:\t%s\n", when(m.Created))
	fmt.Fprintf(tw, "size:\t%s\n", humanSize(m.Size))
	fmt.Fprintf(tw, "subject:\t%s\n", m.Subject)
	fmt.Fprintf(tw, "message-id:\t%s\n", m.MessageID)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range m.Recipients {
		fmt.Fprintf(e.stdout, "\nrecipient:   %s\nstatus:      %s\nattempts:    %d\n", r.Address, r.Status, r.Attempts)
		if r.Status == storage.QueuePending {
			fmt.Fprintf(e.stdout, "next:        %s\n", when(r.NextAttempt))
		}
		if r.RemoteMTA != "" {
			fmt.Fprintf(e.stdout, "host:        %s\n", r.RemoteMTA)
		}
		if r.LastError != "" {
			fmt.Fprintf(e.stdout, "last result: %s\n", r.LastError)
		}
	}
	return nil
}

func (e *env) queueRetry(c *cli.Context) error {
	var id int64
	if c.Bool("all") {
		if _, err := args(c, 0, 0); err != nil {
			return errors.New("usage: pombo queue retry ID|--all (not both)")
		}
	} else {
		var err error
		if id, err = queueID(c); err != nil {
			return err
		}
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.RetryNow(c.Context, id)
	if err != nil {
		return err
	}
	what := "queued messages"
	if id != 0 {
		what = "message " + strconv.FormatInt(id, 10)
	}
	fmt.Fprintf(e.stdout, "%d recipients of %s due now (a running server tries them within 30s)\n", n, what)
	return nil
}

func (e *env) queueDel(c *cli.Context) error {
	id, err := queueID(c)
	if err != nil {
		return err
	}
	st, _, err := openStore(c)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.DeleteQueued(c.Context, id); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "queued message %d deleted\n", id)
	return nil
}

func sender(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func when(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05")
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
