package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenURLs turns waitress-style listen entries into gnet listener URLs,
// one per address (RFC 3986 brackets for IPv6). An entry is host:port split
// on the last colon; "[v6]:port" keeps its brackets; an entry with several
// colons and no brackets, or with no colon, is a host that takes
// defaultPort. "*" (or an empty host) means every address of both
// families, and a name resolves to all its addresses. IPv6 listeners are
// v6-only (gnet forces it), so "*" gives two sockets. Duplicates (except
// port 0) are dropped.
//
// ipv4 and ipv6 choose the families: "*" and names expand only to enabled
// families, and a literal of a disabled family is an error.
func listenURLs(ctx context.Context, entries []string, defaultPort int, ipv4, ipv6 bool) ([]string, error) {
	var urls []string
	seen := map[string]bool{}
	enabled := func(ip netip.Addr) bool {
		if ip.Unmap().Is4() {
			return ipv4
		}
		return ipv6
	}
	add := func(ip netip.Addr, port int) {
		if !enabled(ip) {
			return
		}
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		scheme := "tcp4"
		if ap.Addr().Is6() {
			scheme = "tcp6"
		}
		u := scheme + "://" + ap.String()
		if port == 0 || !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	for _, e := range entries {
		host, portStr := splitListen(e)
		port := defaultPort
		if portStr != "" {
			p, err := strconv.Atoi(portStr)
			if err != nil {
				if p, err = net.DefaultResolver.LookupPort(ctx, "tcp", portStr); err != nil {
					return nil, fmt.Errorf("listen %q: invalid port %q", e, portStr)
				}
			}
			if p < 0 || p > 65535 {
				return nil, fmt.Errorf("listen %q: port %d out of range", e, p)
			}
			port = p
		}
		switch {
		case host == "*" || host == "":
			add(netip.IPv4Unspecified(), port)
			add(netip.IPv6Unspecified(), port)
		default:
			if ip, err := netip.ParseAddr(host); err == nil {
				if !enabled(ip) {
					return nil, fmt.Errorf("listen %q: the address family of %s is disabled (ipv4/ipv6)", e, host)
				}
				add(ip, port)
				continue
			}
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("listen %q: cannot resolve host %q", e, host)
			}
			before := len(urls)
			for _, ip := range ips {
				add(ip, port)
			}
			if len(urls) == before {
				return nil, fmt.Errorf("listen %q: host %q has no address of an enabled family (ipv4/ipv6)", e, host)
			}
		}
	}
	return urls, nil
}

// splitListen splits a listen entry into host and port ("" when absent).
func splitListen(e string) (host, port string) {
	if strings.HasPrefix(e, "[") {
		end := strings.IndexByte(e, ']')
		if end < 0 {
			return e, ""
		}
		host, rest := e[1:end], e[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p
		}
		return host, ""
	}
	if strings.Count(e, ":") != 1 {
		return e, ""
	}
	h, p, _ := strings.Cut(e, ":")
	return h, p
}

// unixURL checks a unix_socket path and returns its gnet URL. gnet removes
// whatever is at the path before binding, so anything but a stale socket
// is refused here.
func unixURL(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("unix_socket %q: %w", p, err)
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return "", fmt.Errorf("unix_socket %q exists and is not a socket; refusing to replace it", p)
	}
	return (&url.URL{Scheme: "unix", Path: abs}).String(), nil
}

func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, 16)
		copy(ip, a.Addr[:])
		return &net.TCPAddr{IP: ip, Port: a.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	}
	return nil
}
