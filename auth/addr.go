package auth

import (
	"net"
	"net/netip"
)

// IsLoopback reports whether addr is a TCP address on loopback (127.0.0.0/8 or
// ::1, also as an IPv4-mapped IPv6 address). Protocols use it for the one
// exception to "no plaintext password over an unencrypted connection".
func IsLoopback(addr net.Addr) bool {
	ip := IPFromAddr(addr)
	return ip.IsValid() && ip.IsLoopback()
}

// IPFromAddr returns the IP address of a TCP address, unmapped from IPv4-mapped
// IPv6 and without zone, or the zero Addr for anything else (a Unix socket, nil).
func IPFromAddr(addr net.Addr) netip.Addr {
	switch a := addr.(type) {
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return netip.Addr{}
		}
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	if n := addr.Network(); n != "tcp" && n != "tcp4" && n != "tcp6" {
		return netip.Addr{}
	}
	// Another implementation of a TCP address (a wrapper, a PROXY protocol
	// listener): go through its text form.
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}
