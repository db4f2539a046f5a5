package imap_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
)

// A message list's HEADER.FIELDS section is named in the response with its
// field list encoded once per FETCH (headerCache.section); the octets must
// be those go-imap writes for the same list, here for the same list asked
// of part 1 (which go-imap names itself) in the same response: plain names,
// names with a quote, a backslash, empty, 8-bit (before and after ENABLE
// UTF8=ACCEPT, which changes how go-imap writes them), with CR LF or NUL
// (sent as literals), one over 4096 octets, with .NOT and with a partial
// range. Two lists are also checked against their encoding by hand.
func TestHeaderFieldsSectionNameOnWire(t *testing.T) {
	e := start(t, nil)
	e.deliver(t, "INBOX", "From: a@example.org\r\nTo: b@example.org\r\nSubject: one\r\n\r\nbody\r\n")
	e.deliver(t, "INBOX", "Subject: two\r\nX: y\r\n\r\n")

	long := strings.Repeat("L", 5000)
	lists := []struct {
		list string // as sent
		want string // as written, when checked by hand
	}{
		{list: `(From To Message-ID)`, want: `("From" "To" "Message-ID")`},
		{list: `("a\"b" "back\\slash" "" subject)`, want: `("a\"b" "back\\slash" "" "subject")`},
		{list: "(\"S\xc3\xbcbject\" From)"},
		{list: "({5+}\r\nX\r\nYZ From)"},
		{list: "({3+}\r\na\x00b)"},
		{list: `("` + long + `" To)`},
	}
	c, br := rawConn(t, e.addr)
	send := func(tag, cmd string) []byte {
		t.Helper()
		if _, err := fmt.Fprintf(c, "%s %s\r\n", tag, cmd); err != nil {
			t.Fatal(err)
		}
		var out []byte
		_, status, err := scanResponse(br, tag, &out)
		if err != nil || status != "OK" {
			t.Fatalf("%.80q: %s %v\n%.300q", cmd, status, err, out)
		}
		return out
	}
	send("L", fmt.Sprintf("LOGIN %s %q", testUser, testPass))
	send("S", "SELECT INBOX")
	checked := 0
	for _, enable := range []bool{false, true} {
		if enable {
			if caps := send("C", "CAPABILITY"); !bytes.Contains(caps, []byte("UTF8=ACCEPT")) {
				continue
			}
			send("E", "ENABLE UTF8=ACCEPT")
		}
		for _, l := range lists {
			for _, kind := range []string{"HEADER.FIELDS", "HEADER.FIELDS.NOT"} {
				for _, partial := range []struct{ sent, wire string }{{"", ""}, {"<2.30>", "<2>"}} {
					resp := send("F", fmt.Sprintf("UID FETCH 1:* (BODY.PEEK[%s %s]%s BODY.PEEK[1.%s %s]%s)",
						kind, l.list, partial.sent, kind, l.list, partial.sent))
					whole := sectionNames(resp, "BODY["+kind+" ")
					part := sectionNames(resp, "BODY[1."+kind+" ")
					if len(whole) != 2 || len(part) != 2 {
						t.Fatalf("%.80q %s: %d and %d section names in\n%.500q", l.list, kind, len(whole), len(part), resp)
					}
					for i := range whole {
						if whole[i] != part[i] {
							t.Errorf("%.80q %s%s, UTF8=ACCEPT %v: the whole message's section is named\n%.200q\nwhere go-imap names\n%.200q",
								l.list, kind, partial.sent, enable, whole[i], part[i])
						}
						if want := l.want + "]" + partial.wire; l.want != "" && whole[i] != want {
							t.Errorf("%s %s%s: named %q, want %q", l.list, kind, partial.sent, whole[i], want)
						}
					}
					checked++
				}
			}
		}
	}
	if checked < len(lists)*4 {
		t.Fatalf("%d lists checked", checked)
	}
}

// sectionNames returns, for each occurrence of prefix in a FETCH response,
// what follows it up to the end of the section's name: its closing bracket
// and partial range (the field names asked have no bracket).
func sectionNames(resp []byte, prefix string) []string {
	var out []string
	for {
		i := bytes.Index(resp, []byte(prefix))
		if i < 0 {
			return out
		}
		resp = resp[i+len(prefix):]
		end := bytes.IndexByte(resp, ']')
		if end < 0 {
			return out
		}
		end++
		if end < len(resp) && resp[end] == '<' {
			end += bytes.IndexByte(resp[end:], '>') + 1
		}
		out = append(out, string(resp[:end]))
		resp = resp[end:]
	}
}

// rawConn opens a connection and reads the greeting.
func rawConn(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	return c, br
}
