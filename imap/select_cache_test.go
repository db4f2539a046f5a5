package imap_test

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// mailboxModel is what a client should see in a mailbox, kept by the test
// from what it did: UIDs in order, and each one's flags as flagsByUID
// prints them.
type mailboxModel struct {
	uids    []uint32
	flags   map[uint32]map[string]bool
	uidNext uint32
}

func (m *mailboxModel) add(uid uint32) {
	m.uids = append(m.uids, uid)
	m.flags[uid] = map[string]bool{}
	m.uidNext = uid + 1
}

func (m *mailboxModel) drop(uid uint32) {
	m.uids = slices.DeleteFunc(m.uids, func(u uint32) bool { return u == uid })
	delete(m.flags, uid)
}

func (m *mailboxModel) fetched() map[uint32]string {
	out := make(map[uint32]string)
	for _, u := range m.uids {
		out[u] = strings.Join(slices.Sorted(maps.Keys(m.flags[u])), " ")
	}
	return out
}

// firstUnseen is the sequence number SELECT's UNSEEN must give, or 0.
func (m *mailboxModel) firstUnseen() uint32 {
	for i, u := range m.uids {
		if !m.flags[u][`\seen`] {
			return uint32(i + 1)
		}
	}
	return 0
}

// checkSelect selects INBOX on c and on rc, and compares all they report
// with the model: SELECT's counts, UIDNEXT and UNSEEN (which go-imap's
// client does not parse: rc reads the lines), and every message's flags.
func checkSelect(t *testing.T, c *imapclient.Client, rc *raw, m *mailboxModel, step string) {
	t.Helper()
	want := fmt.Sprintf("%d EXISTS, UIDNEXT %d, UNSEEN %d", len(m.uids), m.uidNext, m.firstUnseen())
	var exists, uidNext, unseen uint32
	for _, l := range rc.cmd("S", "SELECT INBOX") {
		switch {
		case strings.HasSuffix(l, " EXISTS\r\n"):
			fmt.Sscanf(l, "* %d EXISTS", &exists)
		case strings.HasPrefix(l, "* OK [UIDNEXT "):
			fmt.Sscanf(l, "* OK [UIDNEXT %d]", &uidNext)
		case strings.HasPrefix(l, "* OK [UNSEEN "):
			fmt.Sscanf(l, "* OK [UNSEEN %d]", &unseen)
		}
	}
	if got := fmt.Sprintf("%d EXISTS, UIDNEXT %d, UNSEEN %d", exists, uidNext, unseen); got != want {
		t.Fatalf("%s: SELECT gave %s; want %s", step, got, want)
	}
	d, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("%s: select: %v", step, err)
	}
	if d.NumMessages != uint32(len(m.uids)) || uint32(d.UIDNext) != m.uidNext {
		t.Fatalf("%s: SELECT gave %d EXISTS, UIDNEXT %d; want %s", step, d.NumMessages, d.UIDNext, want)
	}
	if got, want := flagsByUID(t, c, nil), m.fetched(); !maps.Equal(got, want) {
		t.Fatalf("%s: after SELECT the flags are\n%v\nwant\n%v", step, got, want)
	}
	// The sequence numbers follow the UIDs in order.
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range msgs {
		if msg.SeqNum != uint32(i+1) || uint32(msg.UID) != m.uids[i] {
			t.Fatalf("%s: message %d is seq %d UID %d, want UID %d", step, i+1, msg.SeqNum, msg.UID, m.uids[i])
		}
	}
}

var reselectSeed = flag.Uint64("reselect.seed", 0, "seed of TestReselectSeesOtherSessionsChanges (0: from the clock)")

var cacheTestFlags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, imap.FlagDraft, "$Forwarded", "Work"}

// Session 1 changes INBOX (flags, keywords, expunges, moves) while mail
// arrives; session 2 selects it again after each round, which takes the
// shared view of the mailbox and what changed since it was last selected,
// and must see exactly the state session 1 left.
func TestReselectSeesOtherSessionsChanges(t *testing.T) {
	seed := *reselectSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -reselect.seed=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0))
	e := start(t, nil)
	m := &mailboxModel{flags: map[uint32]map[string]bool{}, uidNext: 1}
	for i := 0; i < 20; i++ {
		m.add(e.deliver(t, "INBOX", simpleMsg(fmt.Sprintf("m %d", i), "x")).UID)
	}
	c1, c2 := e.client(t, nil), e.client(t, nil)
	rc := dialRaw(t, e.addr, false)
	rc.login()
	if err := c1.Create("Other", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	selectBox(t, c1, "INBOX")
	checkSelect(t, c2, rc, m, "first select")
	otherValidity := uint32(0)
	for round := 0; round < 25; round++ {
		step := fmt.Sprintf("round %d", round)
		for op := 0; op < 1+r.IntN(4); op++ {
			if err := c1.Noop().Wait(); err != nil { // c1 learns of deliveries
				t.Fatal(err)
			}
			var pick []uint32
			for _, u := range m.uids {
				if r.IntN(3) == 0 {
					pick = append(pick, u)
				}
			}
			set := imap.UIDSetNum()
			for _, u := range pick {
				set.AddNum(imap.UID(u))
			}
			switch k := r.IntN(10); {
			case k < 2:
				for n := 1 + r.IntN(3); n > 0; n-- {
					m.add(e.deliver(t, "INBOX", simpleMsg("new", "y")).UID)
				}
			case k < 6 && len(pick) > 0:
				var fl []imap.Flag
				for _, f := range cacheTestFlags {
					if r.IntN(3) == 0 {
						fl = append(fl, f)
					}
				}
				sf := &imap.StoreFlags{Op: imap.StoreFlagsOp(r.IntN(3)), Silent: true, Flags: fl}
				if err := c1.Store(set, sf, nil).Close(); err != nil {
					t.Fatalf("%s: store: %v", step, err)
				}
				for _, u := range pick {
					if sf.Op == imap.StoreFlagsSet {
						m.flags[u] = map[string]bool{}
					}
					for _, f := range fl {
						if sf.Op == imap.StoreFlagsDel {
							delete(m.flags[u], strings.ToLower(string(f)))
						} else {
							m.flags[u][strings.ToLower(string(f))] = true
						}
					}
				}
			case k < 8 && len(pick) > 0:
				del := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
				if err := c1.Store(set, del, nil).Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := c1.UIDExpunge(set).Collect(); err != nil {
					t.Fatalf("%s: expunge: %v", step, err)
				}
				for _, u := range pick {
					m.drop(u)
				}
			case len(pick) > 0:
				if _, err := c1.Move(set, "Other").Wait(); err != nil {
					t.Fatalf("%s: move: %v", step, err)
				}
				for _, u := range pick {
					m.drop(u)
				}
			}
		}
		checkSelect(t, c2, rc, m, step)
		// The other mailbox in between, sometimes deleted and made again
		// (taking the same id, the newest): a SELECT there shows the new,
		// empty one.
		if r.IntN(3) == 0 {
			if err := c1.Delete("Other").Wait(); err != nil {
				t.Fatal(err)
			}
			if err := c1.Create("Other", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			d := selectBox(t, c2, "Other")
			if d.NumMessages != 0 || d.UIDValidity == otherValidity {
				t.Fatalf("%s: new Other has %d messages, UIDVALIDITY %d (the old one had %d)", step, d.NumMessages, d.UIDValidity, otherValidity)
			}
			otherValidity = d.UIDValidity
		} else if d := selectBox(t, c2, "Other"); otherValidity != 0 && d.UIDValidity != otherValidity {
			t.Fatalf("%s: Other's UIDVALIDITY changed to %d", step, d.UIDValidity)
		} else {
			otherValidity = d.UIDValidity
		}
		checkSelect(t, c2, rc, m, step+", back from Other")
	}
}
