// Package httpguard bounds what one client can hold of a chatd node over HTTP:
// concurrent connections per address (a listener wrapper) and how long a
// request may take to send its body or to read the answer (a handler
// wrapper), so that slow or silent clients cannot exhaust connections,
// descriptors or memory.
package httpguard

import (
	"net"
	"net/netip"
)

// ClientKey is the key under which per-address limits count a remote address
// ("host:port" or a bare host): the IPv4 address, or the /64 of an IPv6
// address, since one IPv6 client usually holds a whole /64.
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return host
	}
	return p.String()
}
