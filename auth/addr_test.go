package auth

import (
	"net"
	"net/netip"
	"testing"
)

// otherAddr is a non-*net.TCPAddr implementation of a TCP address.
type otherAddr struct{ network, s string }

func (a otherAddr) Network() string { return a.network }
func (a otherAddr) String() string  { return a.s }

func TestIsLoopback(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 25}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.1.2.3"), Port: 25}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 25}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 25}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}, false},
		{&net.TCPAddr{IP: net.ParseIP("::"), Port: 25}, false},
		{&net.TCPAddr{IP: net.ParseIP("128.0.0.1"), Port: 25}, false},
		{&net.TCPAddr{IP: net.ParseIP("::2"), Port: 25}, false},
		{&net.TCPAddr{}, false},
		{(*net.TCPAddr)(nil), false},
		{nil, false},
		{&net.UnixAddr{Name: "/run/pombo.sock", Net: "unix"}, false},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 25}, false},
		{otherAddr{"tcp", "127.0.0.1:25"}, true},
		{otherAddr{"tcp6", "[::1]:25"}, true},
		{otherAddr{"tcp", "192.0.2.1:25"}, false},
		{otherAddr{"tcp", "garbage"}, false},
		{otherAddr{"udp", "127.0.0.1:25"}, false},
	} {
		if got := IsLoopback(c.addr); got != c.want {
			t.Errorf("IsLoopback(%#v) = %v, want %v", c.addr, got, c.want)
		}
	}
}

func TestIPFromAddr(t *testing.T) {
	got := IPFromAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 993})
	if got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("IPFromAddr(mapped) = %v", got)
	}
	got = IPFromAddr(otherAddr{"tcp", "[fe80::1%eth0]:25"})
	if got != netip.MustParseAddr("fe80::1") {
		t.Errorf("IPFromAddr(zoned) = %v", got)
	}
}
