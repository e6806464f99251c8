package adapter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/waitron/waitron/codec"
	"github.com/waitron/waitron/limits"
)

// Proxy applies trusted_proxy, trusted_proxy_count, trusted_proxy_headers,
// clear_untrusted_proxy_headers and log_untrusted_proxy_headers to a
// request, following waitress 3.0.2's proxy_headers middleware (its §2.9):
// from a trusted peer the trusted headers set the client address, scheme,
// host and port the handler sees, and are reduced to the trusted hops; a
// malformed trusted header is a 400; the proxy headers that were not used
// are removed (by default) and optionally logged.
type Proxy struct {
	all      bool // trusted_proxy = "*"
	unix     bool // "localhost": unix-socket peers
	addrs    []netip.Addr
	prefixes []netip.Prefix
	count    int
	headers  map[string]bool
	clear    bool
	logUntr  bool
	Canon    []string // ProxyHeaders in canonical form, in the same order
}

// NewProxy compiles the options. trusted may be "*", or addresses and CIDR
// ranges separated by spaces or commas ("localhost" means unix-socket
// peers); it may be empty, in which case no peer is trusted and only
// clearing applies. An empty header set with a trusted proxy means
// x-forwarded-proto, as in waitress.
func NewProxy(trusted string, count int, headers []string, clear, logUntrusted bool) (*Proxy, error) {
	p := &Proxy{count: count, headers: map[string]bool{}, clear: clear, logUntr: logUntrusted}
	for _, h := range limits.ProxyHeaders {
		p.Canon = append(p.Canon, http.CanonicalHeaderKey(h))
	}
	if p.count < 1 {
		return nil, fmt.Errorf("trusted_proxy_count must be at least 1, got %d", count)
	}
	tp, wrong := limits.ParseTrustedProxy(trusted)
	if len(wrong) > 0 {
		return nil, fmt.Errorf("trusted_proxy: %q is not an address, a CIDR range, localhost or *", wrong[0])
	}
	p.all, p.unix, p.addrs, p.prefixes = tp.All, tp.Local, tp.Addrs, tp.Prefixes
	if tp.Local { // loopback peers are local too
		p.addrs = append(p.addrs, netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback())
	}
	for _, h := range headers {
		p.headers[strings.ToLower(h)] = true
	}
	if p.trustsAnyone() && len(p.headers) == 0 {
		p.headers["x-forwarded-proto"] = true
	}
	return p, nil
}

func (p *Proxy) trustsAnyone() bool {
	return p.all || p.unix || len(p.addrs) > 0 || len(p.prefixes) > 0
}

// Trusts reports whether the socket peer is a trusted_proxy (may supply
// proxy headers, or a PROXY protocol header). Any goroutine.
func (p *Proxy) Trusts(peer net.Addr) bool { return p.trusts(peer) }

// trusts reports whether the socket peer may supply proxy headers.
func (p *Proxy) trusts(peer net.Addr) bool {
	if p.all {
		return true
	}
	switch a := peer.(type) {
	case *net.UnixAddr:
		return p.unix
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return false
		}
		ip = ip.Unmap()
		for _, t := range p.addrs {
			if t == ip {
				return true
			}
		}
		for _, pf := range p.prefixes {
			if pf.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// malformedHeader is a trusted proxy header that could not be parsed.
type malformedHeader struct{ header, reason, value string }

func (m *malformedHeader) Error() string { return fmt.Sprintf("%s: %s", m.header, m.reason) }

// hasProxyField reports whether the head has a field the trusted-proxy
// rules read or clear (Forwarded, X-Forwarded-*), by the codec's fields:
// both adapters apply the rules only then, so the requests that have none
// cost no header lookups.
func HasProxyField(h *codec.Head) bool {
	for _, f := range h.Fields {
		name := h.Bytes(f.Name)
		switch {
		case len(name) == len("forwarded") && codec.EqualFold(name, "forwarded"):
			return true
		case len(name) > len("x-forwarded-") && codec.EqualFold(name[:len("x-forwarded-")], "x-forwarded-"):
			return true
		}
	}
	return false
}

// apply rewrites r and info for a request from peer. It returns a 400
// error naming the header (never its value) when a trusted header is
// malformed.
func (p *Proxy) Apply(r *http.Request, info *Info, peer net.Addr, log *slog.Logger) error {
	var untrusted map[string]bool // nil: none is trusted
	if p.trusts(peer) {
		var err error
		untrusted, err = p.parse(r, info, log)
		var m *malformedHeader
		if errors.As(err, &m) {
			log.Warn(fmt.Sprintf("Malformed proxy header %q from %q: %s value: %s", m.header, info.PeerAddr, m.reason, m.value))
			return &badProxyHeader{m.header}
		}
	}
	if p.clear {
		var removed []string
		for i, h := range limits.ProxyHeaders {
			key := p.Canon[i]
			if (untrusted == nil || untrusted[h]) && r.Header[key] != nil {
				delete(r.Header, key)
				removed = append(removed, key)
			}
		}
		if p.logUntr && len(removed) > 0 {
			log.Warn(fmt.Sprintf("Removed untrusted headers (%s). Waitron recommends these be removed upstream.", strings.Join(removed, ", ")))
		}
	}
	return nil
}

// badProxyHeader is the 400 for a malformed trusted header.
type badProxyHeader struct{ header string }

func (b *badProxyHeader) Error() string { return fmt.Sprintf("Header %q malformed.", b.header) }

// header returns every value of h joined with ", " (how WSGI merges
// repeated fields) and whether there was any.
func header(r *http.Request, h string) (string, bool) {
	v, ok := r.Header[http.CanonicalHeaderKey(h)]
	return strings.Join(v, ", "), ok
}

type forwardedElem struct{ by, forr, host, proto string }

// parse is waitress's parse_proxy_headers. It returns the proxy headers
// still untrusted.
func (p *Proxy) parse(r *http.Request, info *Info, log *slog.Logger) (map[string]bool, error) {
	untrusted := map[string]bool{}
	for _, h := range limits.ProxyHeaders {
		untrusted[h] = true
	}
	var clientAddr, fwdHost, fwdProto, fwdPort string
	haveClient := false
	set := func(h string, vals []string) { r.Header[http.CanonicalHeaderKey(h)] = vals }

	if v, ok := header(r, "x-forwarded-for"); p.headers["x-forwarded-for"] && ok {
		var hops []string
		for _, hop := range strings.Split(v, ",") {
			u, err := undquote(strings.TrimSpace(hop))
			if err != nil {
				return nil, &malformedHeader{"X-Forwarded-For", err.Error(), v}
			}
			if !strings.Contains(u, ".") && strings.Contains(u, ":") && !strings.HasSuffix(u, "]") {
				u = "[" + u + "]"
			}
			hops = append(hops, u)
		}
		clientAddr, haveClient = last(hops, p.count)[0], true
		delete(untrusted, "x-forwarded-for")
		set("x-forwarded-for", []string{lastRaw(v, p.count)})
	}
	if v, ok := header(r, "x-forwarded-host"); p.headers["x-forwarded-host"] && ok {
		var hosts []string
		for _, h := range strings.Split(v, ",") {
			u, err := undquote(strings.TrimSpace(h))
			if err != nil {
				return nil, &malformedHeader{"X-Forwarded-Host", err.Error(), v}
			}
			hosts = append(hosts, u)
		}
		fwdHost = last(hosts, p.count)[0]
		delete(untrusted, "x-forwarded-host")
		set("x-forwarded-host", []string{lastRaw(v, p.count)})
	}
	if p.headers["x-forwarded-proto"] {
		u, err := singleValue(r, "X-Forwarded-Proto")
		if err != nil {
			return nil, err
		}
		fwdProto = u
		delete(untrusted, "x-forwarded-proto")
	}
	if p.headers["x-forwarded-port"] {
		u, err := singleValue(r, "X-Forwarded-Port")
		if err != nil {
			return nil, err
		}
		fwdPort = u
		delete(untrusted, "x-forwarded-port")
	}
	if p.headers["x-forwarded-by"] {
		delete(untrusted, "x-forwarded-by") // not interpreted, only kept
	}
	forwarded := ""
	if p.headers["forwarded"] {
		forwarded, _ = header(r, "forwarded")
		untrusted = map[string]bool{}
		for _, h := range limits.ProxyHeaders {
			untrusted[h] = h != "forwarded"
		}
	}
	if forwarded != "" {
		var elems []forwardedElem
		for _, el := range strings.Split(forwarded, ",") {
			el = strings.TrimSpace(el)
			var f forwardedElem
			for _, pair := range strings.Split(el, ";") {
				pair = strings.ToLower(pair)
				if pair == "" {
					continue
				}
				token, value, ok := strings.Cut(pair, "=")
				if !ok {
					return nil, &malformedHeader{"Forwarded", `Invalid forwarded-pair missing "="`, forwarded}
				}
				if strings.TrimSpace(token) != token {
					return nil, &malformedHeader{"Forwarded", "Token may not be surrounded by whitespace", forwarded}
				}
				if strings.TrimSpace(value) != value {
					return nil, &malformedHeader{"Forwarded", "Value may not be surrounded by whitespace", forwarded}
				}
				u, err := undquote(value)
				if err != nil {
					return nil, &malformedHeader{"Forwarded", err.Error(), forwarded}
				}
				switch token {
				case "by":
					f.by = u
				case "for":
					f.forr = u
				case "host":
					f.host = u
				case "proto":
					f.proto = u
				default:
					log.Warn("Unknown Forwarded token: " + token)
				}
			}
			elems = append(elems, f)
		}
		elems = last(elems, p.count)
		// The oldest trusted element with a value wins, field by field.
		for i := len(elems) - 1; i >= 0; i-- {
			if elems[i].forr != "" {
				clientAddr, haveClient = elems[i].forr, true
			}
			if elems[i].host != "" {
				fwdHost = elems[i].host
			}
			if elems[i].proto != "" {
				fwdProto = elems[i].proto
			}
		}
		set("forwarded", []string{lastRaw(forwarded, p.count)})
	}

	if fwdProto != "" {
		fwdProto = strings.ToLower(fwdProto)
		if fwdProto != "http" && fwdProto != "https" {
			name := "X-Forwarded-Proto"
			if forwarded != "" {
				name = "Forwarded"
			}
			return nil, &malformedHeader{name, "unsupported proto value", fwdProto}
		}
		info.Scheme = fwdProto
		if fwdPort == "" {
			fwdPort = map[string]string{"http": "80", "https": "443"}[fwdProto]
		}
	}
	if fwdHost != "" {
		if i := strings.LastIndexByte(fwdHost, ':'); i >= 0 && !strings.HasSuffix(fwdHost, "]") {
			fwdPort = fwdHost[i+1:]
			info.ServerName = strings.TrimSpace(fwdHost[:i])
			r.Host = fwdHost
		} else {
			info.ServerName, r.Host = fwdHost, fwdHost
			if fwdPort != "" && (fwdPort != "443" && fwdPort != "80" ||
				fwdPort == "80" && info.Scheme != "http" || fwdPort == "443" && info.Scheme != "https") {
				r.Host = fwdHost + ":" + fwdPort
			}
		}
	}
	if fwdPort != "" {
		info.ServerPort = fwdPort
	}
	if haveClient && clientAddr != "" {
		_, peerPort, _ := net.SplitHostPort(r.RemoteAddr)
		addr, port := clientAddr, peerPort
		if i := strings.LastIndexByte(clientAddr, ':'); i >= 0 && !strings.HasSuffix(clientAddr, "]") {
			addr, port = strings.TrimSpace(clientAddr[:i]), strings.TrimSpace(clientAddr[i+1:])
		}
		addr = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(addr), "["), "]")
		r.RemoteAddr = net.JoinHostPort(addr, port)
	}
	return untrusted, nil
}

// singleValue reads a proxy header that must hold one (possibly quoted)
// value; a missing header is "".
func singleValue(r *http.Request, name string) (string, error) {
	v, _ := header(r, name)
	u, err := undquote(v)
	if err == nil && strings.Contains(u, ",") {
		err = errMultiple
	}
	if err != nil {
		return "", &malformedHeader{name, err.Error(), v}
	}
	return u, nil
}

var errMultiple = errors.New("Unspecified behavior for multiple values found in header")

// undquote removes the quotes of a valid quoted-string (RFC 9110 §5.6.4)
// and its backslash escapes; an unquoted value is returned as is; a value
// quoted at one end only, or badly, is an error.
func undquote(v string) (string, error) {
	starts, ends := strings.HasPrefix(v, `"`), strings.HasSuffix(v, `"`)
	if !starts && !ends {
		return v, nil
	}
	if starts && ends && len(v) >= 2 {
		var b strings.Builder
		inner := v[1 : len(v)-1]
		ok := true
		for i := 0; i < len(inner) && ok; i++ {
			c := inner[i]
			switch {
			case c == '\\':
				if i+1 < len(inner) && (inner[i+1] == '\t' || inner[i+1] >= 0x20 && inner[i+1] != 0x7f) {
					b.WriteByte(inner[i+1])
					i++
				} else {
					ok = false
				}
			case c == '"' || c < 0x20 && c != '\t' || c == 0x7f:
				ok = false
			default:
				b.WriteByte(c)
			}
		}
		if ok {
			return b.String(), nil
		}
	}
	return "", errors.New("Invalid quoting in value")
}

// lastRaw keeps the last n comma-separated elements of v as they were
// written (waitress 3.0.2 reduces trusted headers to the trusted hops).
func lastRaw(v string, n int) string {
	return strings.TrimSpace(strings.Join(last(strings.Split(v, ","), n), ","))
}

func last[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
