package netbuf

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func pair(t *testing.T) (server *Conn, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan net.Conn)
	go func() { c, _ := l.Accept(); done <- c }()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = Wrap(<-done)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// Writes arrive once the server reads, and in order.
func TestFlushOnRead(t *testing.T) {
	s, c := pair(t)
	for i := 0; i < 1000; i++ {
		s.Write([]byte("* 1 FETCH (FLAGS ())\r\n"))
	}
	go func() { c.Write([]byte("a2 NOOP\r\n")) }()
	line, err := bufio.NewReader(s).ReadString('\n')
	if err != nil || line != "a2 NOOP\r\n" {
		t.Fatalf("server read %q %v", line, err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(io.LimitReader(c, 22000))
	if err != nil || len(got) != 22000 {
		t.Fatalf("client got %d bytes: %v", len(got), err)
	}
}

// A lone write (an IDLE update) goes out without any read.
func TestFlushAfterDelay(t *testing.T) {
	s, c := pair(t)
	s.Write([]byte("* 5 EXISTS\r\n"))
	c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "* 5 EXISTS\r\n" {
		t.Fatalf("client read %q %v", line, err)
	}
}

// Large writes pass through whole and in order with buffered ones.
func TestLargeWrites(t *testing.T) {
	s, c := pair(t)
	big := make([]byte, 100<<10)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	go func() {
		s.Write([]byte("head"))
		s.Write(big)
		s.Write([]byte("tail"))
		s.Flush()
	}()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := io.ReadAll(io.LimitReader(c, int64(len(big)+8)))
	if err != nil {
		t.Fatal(err)
	}
	if string(got[:4]) != "head" || string(got[len(got)-4:]) != "tail" || string(got[4:len(got)-4]) != string(big) {
		t.Fatal("bytes out of order")
	}
}

// A write after the peer went away reports the error.
func TestWriteErrorSurfaces(t *testing.T) {
	s, c := pair(t)
	c.Close()
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = s.Write(make([]byte, 20<<10))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a closed peer never failed")
	}
}
