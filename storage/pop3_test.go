package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestOpenMessageLoaded reads small, header-only and multi-chunk messages the same
// as OpenMessage does, and reports a removed message as ErrNotFound.
func TestOpenMessageLoaded(t *testing.T) {
	s, _ := openTest(t)
	u := addUser(t, s, "alice@example.test")
	ctx := context.Background()
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 3*ChunkSize/18)
	for _, msg := range []string{"Subject: small\r\n\r\nbody\r\n", "Subject: no body\r\n", big} {
		ds, err := s.Deliver(ctx, strings.NewReader(msg), []Recipient{{UserID: u.ID, Prefix: []byte("Delivered-To: alice@example.test\r\n")}}, DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := readAllMsg(t, s, ds[0].MessageID, s.OpenMessage)
		got := readAllMsg(t, s, ds[0].MessageID, s.OpenMessageLoaded)
		if !bytes.Equal(got, want) || !bytes.HasPrefix(got, []byte("Delivered-To: ")) {
			t.Errorf("message of %d octets: read %d octets, want %d", len(msg), len(got), len(want))
		}
		if _, err := s.Remove(ctx, ds[0].MailboxID, []uint32{ds[0].UID}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenMessageLoaded(ctx, ds[0].MessageID); !errors.Is(err, ErrNotFound) {
			t.Errorf("removed message: %v", err)
		}
	}
}

func readAllMsg(t *testing.T, s *Store, id int64, open func(context.Context, int64) (*BlobReader, error)) []byte {
	t.Helper()
	r, err := open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != r.Size() {
		t.Fatalf("read %d octets, Size says %d", len(b), r.Size())
	}
	return b
}
