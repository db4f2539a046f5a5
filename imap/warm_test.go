package imap_test

import (
	"fmt"
	"testing"
	"time"
)

// TestLoginWarmsInbox checks that a login reads the INBOX's view into
// storage's cache before any SELECT, and that the SELECT after it reports
// the mailbox as it is, including a message delivered in between.
func TestLoginWarmsInbox(t *testing.T) {
	e := start(t, nil)
	for i := 0; i < 5; i++ {
		e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("warm %d", i), "body"))
	}
	e.deliver(t, "Archive", simpleMsg("elsewhere", "body"))
	if mb, _ := e.srv.Store.ViewCacheStats(); mb != 0 {
		t.Fatalf("%d views cached before any login", mb)
	}
	c := e.client(t, nil)
	// The read runs in the background: wait for it (not a speed check; the
	// deadline only stops a test that would otherwise hang).
	deadline := time.Now().Add(30 * time.Second)
	for {
		mb, msgs := e.srv.Store.ViewCacheStats()
		if mb == 1 && msgs == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after login the view cache holds %d mailboxes, %d messages; want the INBOX's 5", mb, msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.deliver(t, "INBOX", simpleMsg("after login", "body"))
	d := selectBox(t, c, "INBOX")
	if d.NumMessages != 6 || d.UIDNext != 7 {
		t.Fatalf("SELECT after the warm read: EXISTS %d, UIDNEXT %d; want 6, 7", d.NumMessages, d.UIDNext)
	}
}
