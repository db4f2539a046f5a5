package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"pombo/auth"
	"pombo/storage"
)

// The accounts of the mixed workload: mixedN@example.test, each holding
// pombo's default mailboxes, filled in proportion to the INBOX.
func mixedUser(a int) string { return fmt.Sprintf("mixed%d@example.test", a+1) }

type mixedFolder struct {
	name string
	size func(inbox int) int
	// unseen: the newest unseen messages (the others are \Seen).
	unseen func(inbox int) int
}

var mixedFolders = []mixedFolder{
	{"INBOX", func(n int) int { return n }, func(n int) int { return min(mixedRecent, n) }},
	{"Sent", func(n int) int { return n / 20 }, func(int) int { return 0 }},
	{"Archive", func(n int) int { return n / 20 }, func(int) int { return 0 }},
	{"Trash", func(n int) int { return n / 100 }, func(int) int { return 0 }},
	{"Junk", func(n int) int { return n / 200 }, func(n int) int { return n / 200 }},
	{"Drafts", func(int) int { return 5 }, func(int) int { return 0 }},
}

// mixedRecent is how many of the newest INBOX messages start unseen; the
// workload reads, flags and restores only these.
const mixedRecent = 50

// mixedMessage is message i of folder f of account a, LF line ends. The
// corpus message is picked so that accounts and folders differ.
func (c corpus) mixedMessage(a, f, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: <mixed-%d-%d-%d@example.test>\n", a, f, i)
	body := c[(i*7919+a*104729+f*31)%len(c)]
	body = bytes.Replace(body, []byte("\nMessage-ID:"), []byte("\nX-Orig-Message-ID:"), 1)
	if bytes.HasPrefix(body, []byte("Message-ID:")) {
		b.WriteString("X-Orig-")
	}
	b.Write(body)
	return b.Bytes()
}

var mixedBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// mixedMark names a complete fill: accounts and INBOX size.
func mixedMark(accounts, inbox int) string {
	return fmt.Sprintf("%d accounts, %d in INBOX", accounts, inbox)
}

func checkMark(dir, want string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "filled"))
	if err != nil {
		if _, err := os.Stat(dir); err == nil {
			log.Fatalf("%s holds a partial fill: delete it", dir)
		}
		return false
	}
	if string(b) != want {
		log.Fatalf("%s holds %q, not %q: delete it or use another -dir", dir, b, want)
	}
	return true
}

// fillPomboMixed delivers every folder of every account. Each folder is
// filled in order (message i gets UID i+1, as in the Maildirs); folders are
// filled side by side, so group commit still batches.
func fillPomboMixed(dir string, accounts, inbox int, msgs func() corpus) {
	mark := mixedMark(accounts, inbox)
	if checkMark(dir, mark) {
		return
	}
	st, err := storage.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	st.AddDomain(ctx, "example.test")
	h, _ := auth.HashPassword(pass)
	ids := make([]int64, accounts)
	for a := range ids {
		u, err := st.AddUser(ctx, mixedUser(a), h, 0)
		if err != nil {
			log.Fatal(err)
		}
		ids[a] = u.ID
	}
	c := msgs()
	t0 := time.Now()
	parallel(accounts*len(mixedFolders), accounts*len(mixedFolders), func(j int) {
		a, f := j/len(mixedFolders), j%len(mixedFolders)
		mf := mixedFolders[f]
		n, unseen := mf.size(inbox), mf.unseen(inbox)
		for i := 0; i < n; i++ {
			opts := storage.DeliverOptions{InternalDate: mixedBase.Add(time.Duration(i) * time.Minute)}
			if i < n-unseen {
				opts.Flags = storage.FlagSeen
			}
			rc := []storage.Recipient{{UserID: ids[a], Mailbox: mf.name}}
			if _, err := st.Deliver(ctx, bytes.NewReader(c.mixedMessage(a, f, i)), rc, opts); err != nil {
				log.Fatal(err)
			}
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "filled"), []byte(mark), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pombo: filled %d accounts in %v\n", accounts, time.Since(t0).Round(time.Second))
}

// maildirOf is the Maildir++ directory of a folder.
func maildirOf(dir string, a int, folder string) string {
	md := filepath.Join(dir, "home", fmt.Sprintf("u%d", a+1), "Maildir")
	if folder == "INBOX" {
		return md
	}
	return filepath.Join(md, "."+folder)
}

// fillMaildirsMixed writes the same messages as Maildir files named as
// Dovecot's own delivery names them (S= file size, W= size with CRLF), with
// the \Seen flag in the name and the internal date as mtime. File names sort
// in delivery order.
func fillMaildirsMixed(dir string, accounts, inbox int, msgs func() corpus) {
	mark := mixedMark(accounts, inbox)
	if checkMark(dir, mark) {
		return
	}
	c := msgs()
	t0 := time.Now()
	parallel(accounts*len(mixedFolders), 4, func(j int) {
		a, f := j/len(mixedFolders), j%len(mixedFolders)
		mf := mixedFolders[f]
		md := maildirOf(dir, a, mf.name)
		for _, d := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(md, d), 0o700); err != nil {
				log.Fatal(err)
			}
		}
		if mf.name != "INBOX" {
			os.WriteFile(filepath.Join(md, "maildirfolder"), nil, 0o600)
		}
		n, unseen := mf.size(inbox), mf.unseen(inbox)
		for i := 0; i < n; i++ {
			m := c.mixedMessage(a, f, i)
			flags := ""
			if i < n-unseen {
				flags = "S"
			}
			name := fmt.Sprintf("%d.M%06dP%d.mixed,S=%d,W=%d:2,%s", 1700000000+i, i, a, len(m), len(m)+bytes.Count(m, []byte("\n")), flags)
			p := filepath.Join(md, "cur", name)
			if err := os.WriteFile(p, m, 0o600); err != nil {
				log.Fatal(err)
			}
			t := mixedBase.Add(time.Duration(i) * time.Minute)
			os.Chtimes(p, t, t)
		}
	})
	var subs strings.Builder
	subs.WriteString("V\t2\n\n")
	for _, mf := range mixedFolders[1:] {
		subs.WriteString(mf.name + "\n")
	}
	for a := 0; a < accounts; a++ {
		os.WriteFile(filepath.Join(maildirOf(dir, a, "INBOX"), "subscriptions"), []byte(subs.String()), 0o600)
	}
	if err := os.WriteFile(filepath.Join(dir, "filled"), []byte(mark), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dovecot: wrote %d accounts of maildir files in %v\n", accounts, time.Since(t0).Round(time.Second))
}
