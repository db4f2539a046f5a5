package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rawClient speaks IMAP by hand, so that both servers receive the very same
// bytes, written as Thunderbird writes them (IMAP4rev1, no ENABLE, plain
// SEARCH replies), whatever capabilities they announce.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	tag  int
}

// reply is what a command got back: the untagged lines (literals replaced
// by their length) and the bytes of literal data.
type reply struct {
	untagged     []string
	literalBytes int64
}

func dialRaw(addr string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	greeting, err := c.r.ReadString('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		conn.Close()
		return nil, fmt.Errorf("greeting: %q", greeting)
	}
	return c, nil
}

func (c *rawClient) close() { c.conn.Close() }

// do sends one command and reads until its tagged reply, which must be OK.
func (c *rawClient) do(cmd string) (*reply, error) {
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	c.conn.SetDeadline(time.Now().Add(10 * time.Minute))
	if _, err := io.WriteString(c.conn, tag+" "+cmd+"\r\n"); err != nil {
		return nil, err
	}
	rep := &reply{}
	for {
		line, err := c.readLine(rep)
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(line, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return rep, fmt.Errorf("%s: %s", cmd, rest)
			}
			return rep, nil
		}
		if strings.HasPrefix(line, "* ") {
			rep.untagged = append(rep.untagged, line)
		}
	}
}

// readLine reads one response line, skipping the literals inside it.
func (c *rawClient) readLine(rep *reply) (string, error) {
	var b strings.Builder
	for {
		part, err := c.r.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			b.Write(part)
			part, err = c.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		b.Write(part)
		s := b.String()
		if !strings.HasSuffix(s, "}\r\n") {
			return strings.TrimRight(s, "\r\n"), nil
		}
		open := strings.LastIndexByte(s, '{')
		n, err := strconv.ParseInt(strings.TrimSuffix(s[open+1:len(s)-3], "+"), 10, 64)
		if open < 0 || err != nil {
			return "", fmt.Errorf("bad literal in %q", s)
		}
		if _, err := io.CopyN(io.Discard, c.r, n); err != nil {
			return "", err
		}
		rep.literalBytes += n
		b.Reset()
		b.WriteString(s[:open])
		fmt.Fprintf(&b, "<%d>", n)
	}
}

// count is a digest of a reply, compared between the servers: the numbers
// of a SEARCH, the FETCH lines, or the literal bytes.
func (rep *reply) count(kind string) int64 {
	var n int64
	for _, l := range rep.untagged {
		switch {
		case strings.HasPrefix(l, "* SEARCH"):
			n += int64(len(strings.Fields(l)) - 2)
		case strings.Contains(l, " FETCH ("):
			n++
		}
	}
	if kind == kindBody {
		return rep.literalBytes
	}
	return n
}

// uidNext finds [UIDNEXT n] in a SELECT reply.
func (rep *reply) uidNext() uint32 {
	for _, l := range rep.untagged {
		if i := strings.Index(l, "[UIDNEXT "); i >= 0 {
			f := strings.FieldsFunc(l[i+9:], func(r rune) bool { return r == ']' || r == ' ' })
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 32)
				return uint32(n)
			}
		}
	}
	return 0
}

// quote makes an IMAP quoted string.
func quote(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
