package netbuf

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
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

// fill writes to a peer that does not read until a write fails, and
// returns that error.
func fill(s *Conn) error {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := s.Write(chunk); err != nil {
			return err
		}
	}
}

// A write deadline set before buffered writes holds when they reach the
// socket: writes to a peer that stops reading end with a timeout.
func TestWriteDeadlineHolds(t *testing.T) {
	s, _ := pair(t)
	s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	for i := 0; i < 100; i++ {
		s.Write([]byte("* 1 FETCH (FLAGS ())\r\n"))
	}
	if err := fill(s); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes ended with %v, want a deadline error", err)
	}
}

// A deadline in the past stops a write that is blocked on the socket, after
// later and later ones, as a server sets before each response, were kept
// for the next write.
func TestPastDeadlineStopsWrite(t *testing.T) {
	s, _ := pair(t)
	for i := range 10 {
		s.SetWriteDeadline(time.Now().Add(time.Hour + time.Duration(i)*time.Second))
	}
	done := make(chan error, 1)
	go func() { done <- fill(s) }()
	time.Sleep(100 * time.Millisecond) // let the writes block
	s.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked write ended with %v, want a deadline error", err)
	}
}

// Clearing a deadline (zero time) reaches the socket too: a deadline once
// set and then cleared does not fail a later slow write.
func TestClearedDeadline(t *testing.T) {
	s, c := pair(t)
	s.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	s.Write([]byte("x"))
	s.Flush() // the socket gets the 50 ms deadline
	s.SetWriteDeadline(time.Time{})
	big := make([]byte, 8<<20)
	go func() {
		time.Sleep(200 * time.Millisecond) // past the old deadline
		io.Copy(io.Discard, c)
	}()
	if _, err := s.Write(big); err != nil {
		t.Fatalf("write after the deadline was cleared: %v", err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}
