package netlimit

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestPerIPAndTotalLimits(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(raw, 3, 2, func(c net.Conn) { c.Write([]byte("busy\r\n")) })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\r\n"))
			accepted <- c
		}
	}()
	dial := func(src string) string {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if got := dial("127.0.0.1"); got != "hello\r\n" {
		t.Fatalf("first: %q", got)
	}
	if got := dial("127.0.0.1"); got != "hello\r\n" {
		t.Fatalf("second: %q", got)
	}
	if got := dial("127.0.0.1"); got != "busy\r\n" {
		t.Fatalf("third from one IP: %q, want busy", got)
	}
	if got := dial("127.0.0.2"); got != "hello\r\n" {
		t.Fatalf("other IP: %q", got)
	}
	if got := dial("127.0.0.3"); got != "busy\r\n" {
		t.Fatalf("over total: %q, want busy", got)
	}
	// Closing one frees its slot.
	(<-accepted).Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if total, _ := l.Count(netip0()); total == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := dial("127.0.0.3"); got != "hello\r\n" {
		t.Fatalf("after a close: %q", got)
	}
}

func netip0() netip.Addr { return netip.Addr{} }
