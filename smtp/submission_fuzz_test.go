package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzSubmissionHeader: readHeader and headerFields never panic, the header
// is a prefix of the message, and completeHeader adds Message-ID or Date
// exactly when headerFields finds none.
func FuzzSubmissionHeader(f *testing.F) {
	f.Add([]byte("From: a@b.test\r\nDate: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Message-ID: <x@y>\r\n\r\n"))
	f.Add([]byte("From: \"A\"\r\n <a@b.test>\r\nSubject: folded\r\n\tmore\r\n\r\n"))
	f.Add([]byte("no header at all"))
	f.Add([]byte("\r\n\r\nDate: in the body\r\n"))
	f.Add([]byte(" Date: continuation first\r\nfrom:a@b\r\n\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		hdr, err := readHeader(bufio.NewReader(bytes.NewReader(msg)))
		if err != nil {
			if len(msg) <= maxSubmitHeader {
				t.Fatalf("readHeader: %v", err)
			}
			return
		}
		if !bytes.HasPrefix(msg, hdr) {
			t.Fatalf("header %q is not a prefix of %q", hdr, msg)
		}
		tr := &trace{id: "id", date: time.Unix(0, 0)}
		added := string(completeHeader(hdr, tr, "host"))
		if hasDate := len(headerFields(hdr, "date")) > 0; hasDate == strings.Contains(added, "Date: ") {
			t.Fatalf("header %q: Date found %v, added %q", hdr, hasDate, added)
		}
		if hasID := len(headerFields(hdr, "message-id")) > 0; hasID == strings.Contains(added, "Message-ID: ") {
			t.Fatalf("header %q: Message-ID found %v, added %q", hdr, hasID, added)
		}
		for _, v := range headerFields(hdr, "from") {
			if strings.Contains(v, "\n") { // bare CRs never get here: the dataReader refuses them
				t.Fatalf("unfolded value %q keeps a line break", v)
			}
		}
	})
}
