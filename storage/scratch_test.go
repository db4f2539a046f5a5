package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// scratchMessage is message i of TestScratchReuseKeepsMessagesApart: a
// size that cycles through small, one page, two chunks' worth (spilled to
// a file) and a large text part, with a word no other message has in its
// body.
func scratchMessage(i int) []byte {
	sizes := []int{300, 5 << 10, ChunkSize + 40<<10, 150 << 10, 40}
	size := sizes[i%len(sizes)]
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <s%d@example.org>\r\nTo: alice@example.test\r\nSubject: scratch %d\r\n\r\nmarker%dword\r\n", i, i, i)
	line := strings.Repeat(string(rune('a'+i%26)), 70) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// Deliveries reuse their spool's buffers (scratchPool). A message must
// come out with its own bytes and its own search text, whatever size the
// one before it in the same buffers had.
func TestScratchReuseKeepsMessagesApart(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	const n = 40
	ids := make([]Delivery, n)
	deliver := func(i int) error {
		ds, err := s.Deliver(ctx, bytes.NewReader(scratchMessage(i)), []Recipient{{UserID: u.ID}}, DeliverOptions{})
		if err != nil {
			return err
		}
		ids[i] = ds[0]
		return nil
	}
	// First one at a time, so that each message takes the buffers the one
	// before it left; then the rest from four goroutines.
	for i := 0; i < n/2; i++ {
		if err := deliver(i); err != nil {
			t.Fatal(err)
		}
	}
	var next atomic.Int64
	next.Store(n / 2)
	if err := parallel(n-n/2, 4, func() error { return deliver(int(next.Add(1) - 1)) }); err != nil {
		t.Fatal(err)
	}
	for i, d := range ids {
		want := scratchMessage(i)
		if got := readAll(t, s, d.MessageID); !bytes.Equal(got, want) {
			t.Fatalf("message %d: read %d octets, want its own %d", i, len(got), len(want))
		}
		uids, err := s.Search(ctx, d.MailboxID, &SearchCriteria{Body: []string{fmt.Sprintf("marker%dword", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(uids, []uint32{d.UID}) {
			t.Fatalf("SEARCH BODY marker of message %d (UID %d) matched %v", i, d.UID, uids)
		}
	}
}
