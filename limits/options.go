// Package limits holds waitron's options once: each option's waitress name,
// type, default, unit and documentation live in one table, and the Go API
// (Options, Default, Set, Validate), the command line and docs/options.md
// are all driven by it.
package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Options is the complete configuration of a waitron server. The zero value
// is not useful; start from Default().
type Options struct {
	Host   string
	Port   int
	Listen []string
	IPv4   bool
	IPv6   bool
	// Sockets are listeners made elsewhere that the server adopts (and closes
	// at shutdown); set from Go. From strings, "systemd" takes the sockets
	// of systemd socket activation (SocketsFrom).
	Sockets                    []net.Listener
	SocketsFrom                string
	UnixSocket                 string
	UnixSocketPerms            os.FileMode
	Threads                    int
	Ident                      string
	ExposeTracebacks           bool
	MaxRequestHeaderSize       int
	MaxRequestBodySize         int64
	InbufOverflow              int
	OutbufHighWatermark        int
	OutbufOverflow             int
	RecvBytes                  int
	Backlog                    int
	ConnectionLimit            int
	SendBytes                  int
	ChannelRequestLookahead    int
	LogSocketErrors            bool
	AsyncoreLoopTimeout        int
	AsyncoreUsePoll            bool
	ChannelTimeout             int
	CleanupInterval            int
	RequestHeaderTimeout       int
	RequestBodyTimeout         int
	RequestBodyMinRate         int
	SendTimeout                int
	URLScheme                  string
	TrustedProxy               string
	TrustedProxyCount          int
	TrustedProxyHeaders        []string
	ClearUntrustedProxyHeaders bool
	LogUntrustedProxyHeaders   bool
	URLPrefix                  string
	ServerName                 string
	MetricsListen              string
	AccessLog                  string
	AccessLogFormat            string
	ReusePort                  bool
	ProxyProtocol              bool
	EventLoops                 int

	// given records the options set through Set (the command line or a
	// config file), so conflicts can be judged the way waitress judges them:
	// on what the user said, not on values that happen to equal a default.
	given map[string]bool
}

// Kind is the type of an option's value, which decides how a string is
// parsed and how the option appears on the command line.
type Kind int

const (
	Int  Kind = iota // a decimal integer
	Bool             // true/false, yes/no, on/off, 1/0
	Str              // any string
	List             // strings separated by white space or commas; setting it again adds to it
)

// Option describes one option. Get and Set reach its field in Options.
type Option struct {
	Name    string // waitress's spelling, e.g. max_request_body_size
	Kind    Kind
	Default string // the default as a user would write it
	Unit    string // "bytes", "seconds", … for docs; empty when none
	Doc     string
	get     func(*Options) string
	set     func(*Options, string) error
}

// Flag returns the option's command-line spelling, e.g. --max-request-body-size.
func (o Option) Flag() string { return "--" + strings.ReplaceAll(o.Name, "_", "-") }

// Table returns every option in documentation order.
func Table() []Option { return table }

var table = []Option{
	strOpt("host", "0.0.0.0", "", "Host of the default listener; builds listen = host:port when host or port is given. Conflicts with listen.",
		func(o *Options) *string { return &o.Host }),
	intOpt("port", "8080", "", "Port of the default listener, and the port of listen entries that name none. Conflicts with listen.",
		func(o *Options) *int { return &o.Port }),
	listOpt("listen", "0.0.0.0:8080", "Space- or comma-separated host:port entries to listen on (repeatable: each adds entries). [v6]:port for IPv6, * for every address, a missing port means port.",
		func(o *Options) *[]string { return &o.Listen }),
	boolOpt("ipv4", "true", "Listen on IPv4 addresses: * and host names expand to their IPv4 addresses, and IPv4 literals are allowed.",
		func(o *Options) *bool { return &o.IPv4 }),
	boolOpt("ipv6", "true", "Listen on IPv6 addresses (always v6-only sockets): * and host names expand to their IPv6 addresses, and IPv6 literals are allowed.",
		func(o *Options) *bool { return &o.IPv6 }),
	strOpt("sockets", "", "", "Already-bound sockets to serve on instead of host/port/listen/unix_socket: from Go, listeners in Options.Sockets; as a string, \"systemd\" for systemd socket activation (LISTEN_FDS, LISTEN_PID). All Internet or all UNIX stream sockets.",
		func(o *Options) *string { return &o.SocketsFrom }),
	strOpt("unix_socket", "", "", "Path of a unix-domain socket to listen on instead of TCP. A socket file already there is replaced; any other file there is an error. Removed on shutdown. Conflicts with host, port and listen.",
		func(o *Options) *string { return &o.UnixSocket }),
	Option{Name: "unix_socket_perms", Kind: Str, Default: "600", Doc: "Permission bits (octal) of the unix_socket file, applied right after it is created.",
		get: func(o *Options) string { return strconv.FormatUint(uint64(o.UnixSocketPerms), 8) },
		set: func(o *Options, v string) error {
			s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(v), "0o"), "0O")
			n, err := strconv.ParseUint(s, 8, 32)
			if err != nil {
				return fmt.Errorf("%q is not an octal permission", v)
			}
			o.UnixSocketPerms = os.FileMode(n)
			return nil
		}},
	intOpt("threads", "4", "", "Size of the worker pool that runs handlers: never more handlers run at once.",
		func(o *Options) *int { return &o.Threads }),
	strOpt("ident", "waitron", "", "Server header value and the tag in server-generated error bodies; empty sends no Server header.",
		func(o *Options) *string { return &o.Ident }),
	boolOpt("expose_tracebacks", "false", "Put the panic value and stack in the body of the 500 sent when a handler panics.",
		func(o *Options) *bool { return &o.ExposeTracebacks }),
	intOpt("max_request_header_size", "262144", "bytes", "Largest request head (request line and fields, with their CRLFs); more is answered 431, also while the head is still arriving.",
		func(o *Options) *int { return &o.MaxRequestHeaderSize }),
	int64Opt("max_request_body_size", "1073741824", "bytes", "Largest request body, counted on decoded bytes; more is answered 413. A body of exactly this size is accepted.",
		func(o *Options) *int64 { return &o.MaxRequestBodySize }),
	intOpt("inbuf_overflow", "524288", "bytes", "Request bodies larger than this are spooled to a temporary file. The file is unlinked as soon as it is created (nothing is left in the directory) and, when the request ends, kept open for the next large body while the kept files hold at most 16 MiB, else closed.",
		func(o *Options) *int { return &o.InbufOverflow }),
	intOpt("outbuf_overflow", "1048576", "bytes", "Response output pending for a connection beyond this goes to a temporary file, fed to the client as it reads and removed afterwards; memory per slow reader stays near this.",
		func(o *Options) *int { return &o.OutbufOverflow }),
	intOpt("outbuf_high_watermark", "16777216", "bytes", "A handler's Write blocks while more than this many response bytes are pending for its connection.",
		func(o *Options) *int { return &o.OutbufHighWatermark }),
	intOpt("backlog", "1024", "", "Length of each listening socket's accept queue (the kernel caps it at net.core.somaxconn).",
		func(o *Options) *int { return &o.Backlog }),
	intOpt("connection_limit", "100", "", "Most client connections served at once (listeners are not counted). Further clients are accepted but wait, unread, for a free slot in arrival order; at most backlog of them wait, each at most channel_timeout, and beyond that a client gets 503 and is closed.",
		func(o *Options) *int { return &o.ConnectionLimit }),
	intOpt("send_bytes", "65536", "bytes", "Size of the pieces a response leaves the handler in: a handler that returns having written no more than this (without flushing) gets a Content-Length; longer output is sent as it reaches this size. (waitress's deprecated default of 1 would chunk every response.)",
		func(o *Options) *int { return &o.SendBytes }),
	intOpt("channel_request_lookahead", "0", "", "Accepted for waitress compatibility; any value behaves the same here. A client that closes its connection while its request runs always cancels the request's context (as net/http does, and waitress's client_disconnected with a value above 0), and what the handler still writes is delivered while the socket takes it. One further request is always read ahead (gnet cannot pause reading) and pipelined input is bounded in bytes. A startup note says so when set.",
		func(o *Options) *int { return &o.ChannelRequestLookahead }),
	boolOpt("log_socket_errors", "true", "Log socket errors (resets, broken pipes, failed writes) as warnings; when false they are logged at debug level.",
		func(o *Options) *bool { return &o.LogSocketErrors }),
	intOpt("asyncore_loop_timeout", "1", "seconds", "Accepted for waitress compatibility. Here: the tick on which idle connections are looked for runs at most this often (Date is refreshed every second regardless). A startup note says so when set.",
		func(o *Options) *int { return &o.AsyncoreLoopTimeout }),
	boolOpt("asyncore_use_poll", "false", "Accepted for waitress compatibility. It has no effect: gnet always uses epoll, which has no select() descriptor limit. A startup note says so when set.",
		func(o *Options) *bool { return &o.AsyncoreUsePoll }),
	intOpt("recv_bytes", "65536", "bytes", "Bytes read from a socket at a time: the size of each event loop's read buffer (one per loop, not per connection; rounded up to a power of two, at least 1024). waitress's default is 8192; 65536 (gnet's own) takes an upload in an eighth of the reads.",
		func(o *Options) *int { return &o.RecvBytes }),
	strOpt("trusted_proxy", "", "", "Peers allowed to supply proxy headers: an address, or several addresses and CIDR ranges separated by spaces or commas, \"localhost\" for unix-socket peers, or * for every peer (waitress takes one address or *).",
		func(o *Options) *string { return &o.TrustedProxy }),
	intOpt("trusted_proxy_count", "1", "", "How many of the rightmost X-Forwarded-For, X-Forwarded-Host and Forwarded elements come from trusted proxies; the leftmost of those is used. Needs trusted_proxy.",
		func(o *Options) *int { return &o.TrustedProxyCount }),
	Option{Name: "trusted_proxy_headers", Kind: List, Default: "", Doc: "Proxy headers to use from a trusted proxy, space- or comma-separated (repeatable: each adds headers): x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-forwarded-port, x-forwarded-by, forwarded (not together with any x-forwarded-*). Empty with trusted_proxy set means x-forwarded-proto. Needs trusted_proxy.",
		get: func(o *Options) string { return strings.Join(o.TrustedProxyHeaders, " ") },
		set: func(o *Options, v string) error {
			o.TrustedProxyHeaders = splitList(strings.ToLower(v))
			return nil
		}},
	boolOpt("clear_untrusted_proxy_headers", "true", "Remove the proxy headers (Forwarded, X-Forwarded-For/-Host/-Proto/-Port/-By) that were not used from a trusted proxy before the handler sees the request, also when trusted_proxy is not set.",
		func(o *Options) *bool { return &o.ClearUntrustedProxyHeaders }),
	boolOpt("log_untrusted_proxy_headers", "false", "Log a warning naming the untrusted proxy headers that were removed.",
		func(o *Options) *bool { return &o.LogUntrustedProxyHeaders }),
	strOpt("url_scheme", "http", "", "The scheme handlers see in RequestInfo(r).Scheme unless a trusted proxy says otherwise.",
		func(o *Options) *string { return &o.URLScheme }),
	prefixOpt("url_prefix", "", "Path prefix the application is mounted at (waitress's SCRIPT_NAME): stripped from r.URL.Path when the path is the prefix or under it, and reported as RequestInfo(r).ScriptName. Written with one leading and no trailing slash.",
		func(o *Options) *string { return &o.URLPrefix }),
	strOpt("server_name", "waitron.invalid", "", "The server name handlers see in RequestInfo(r).ServerName (not taken from Host) unless a trusted proxy reports a host.",
		func(o *Options) *string { return &o.ServerName }),
	intOpt("channel_timeout", "120", "seconds", "A connection with no request in flight and no traffic either way for this long is closed (an idle keep-alive, a stalled partial request, a client that stopped reading). Also bounds how long a close waits for a non-reading client to take the last response.",
		func(o *Options) *int { return &o.ChannelTimeout }),
	intOpt("request_header_timeout", "60", "seconds", "A request head must arrive in full within this time, counted from the connection's start (first request) or from its first byte (later requests); otherwise 408 and close. Not in waitress, whose single idle timer lets a slowloris client hold a slot forever.",
		func(o *Options) *int { return &o.RequestHeaderTimeout }),
	intOpt("request_body_timeout", "60", "seconds", "A request body may not stall longer than this between two reads; otherwise 408 and close. Not in waitress.",
		func(o *Options) *int { return &o.RequestBodyTimeout }),
	intOpt("request_body_min_rate", "1024", "bytes/second", "After request_body_timeout seconds, a request body must have averaged at least this rate; otherwise 408 and close, so trickled bodies cannot hold connection slots. 0 turns the rate check off. Not in waitress.",
		func(o *Options) *int { return &o.RequestBodyMinRate }),
	intOpt("send_timeout", "60", "seconds", "A connection with response bytes pending whose client takes none for this long is closed; a handler blocked writing to it is released with an error. Not in waitress, where such a client pins a worker forever.",
		func(o *Options) *int { return &o.SendTimeout }),
	boolOpt("proxy_protocol", "false", "Accept a PROXY protocol header (v1 or v2: HAProxy send-proxy/send-proxy-v2, AWS NLB, nginx proxy_protocol) at the start of connections from trusted_proxy peers: the client it names becomes the request's RemoteAddr, for the proxy-header rules and the access log too. A header from any other peer, or a malformed, truncated or over-long one, closes the connection with a logged reason before any handler sees it; connections without one are served as usual. Needs trusted_proxy. Not in waitress.",
		func(o *Options) *bool { return &o.ProxyProtocol }),
	boolOpt("reuse_port", "false", "Bind the listen addresses with SO_REUSEPORT, so several waitron processes serve one port and the kernel spreads new connections among them: start the new one, stop the old one gracefully, and no connection is refused (zero-downtime restart). Not with unix_socket or sockets. Not in waitress.",
		func(o *Options) *bool { return &o.ReusePort }),
	intOpt("event_loops", "0", "", "Number of event loops doing the socket I/O; 0 follows GOMAXPROCS (which follows the container's CPU limit since Go 1.25). Not in waitress.",
		func(o *Options) *int { return &o.EventLoops }),
	strOpt("access_log", "", "", "Write one line per response to this file (appended; - for standard output): off when empty, as in waitress. Lines are written by a goroutine of their own, never by an event loop. Not in waitress (paste's TransLogger gives its users the same).",
		func(o *Options) *string { return &o.AccessLog }),
	strOpt("access_log_format", "combined", "", "combined: Apache's and nginx's combined format (client address as the trusted-proxy rules resolved it, time, request line, status, body bytes, Referer, User-Agent), followed by the duration in seconds and, when the connection closes after the response, close=<reason>; json: one log/slog JSON record per response with the same fields.",
		func(o *Options) *string { return &o.AccessLogFormat }),
	strOpt("metrics_listen", "", "", "host:port of an operations listener apart from the application (a plain net/http server): /metrics in the Prometheus text format (every name prefixed waitron_), /healthz (200 while the process serves) and /readyz (200; 503 from the moment a graceful shutdown starts, so a load balancer stops sending before the drain). Empty: none. Not in waitress.",
		func(o *Options) *string { return &o.MetricsListen }),
	intOpt("cleanup_interval", "30", "seconds", "How often idle connections are looked for (channel_timeout): a connection is closed between channel_timeout and channel_timeout + cleanup_interval after it fell idle.",
		func(o *Options) *int { return &o.CleanupInterval }),
}

// Default returns the options with every default applied.
func Default() Options {
	var o Options
	for _, opt := range table {
		if err := opt.set(&o, opt.Default); err != nil {
			panic("limits: bad default for " + opt.Name + ": " + err.Error())
		}
	}
	o.given = nil
	return o
}

// Lookup returns the option named name (waitress spelling; dashes are also
// accepted) and whether it exists.
func Lookup(name string) (Option, bool) {
	name = strings.ReplaceAll(name, "-", "_")
	for _, opt := range table {
		if opt.Name == name {
			return opt, true
		}
	}
	return Option{}, false
}

// Set parses value for the option called name and records that the option
// was given. Repeated list options accumulate, like --listen on the command
// line.
func (o *Options) Set(name, value string) error {
	opt, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown option %q", name)
	}
	if opt.Kind == List && o.given[opt.Name] {
		value = opt.get(o) + " " + value // a repeated list option adds to it
	}
	if err := opt.set(o, value); err != nil {
		return fmt.Errorf("%s: %w", opt.Name, err)
	}
	if o.given == nil {
		o.given = map[string]bool{}
	}
	o.given[opt.Name] = true
	return nil
}

// Get returns the option's current value as a string.
func (o *Options) Get(name string) string {
	opt, ok := Lookup(name)
	if !ok {
		return ""
	}
	return opt.get(o)
}

// Given reports whether the option was set through Set.
func (o *Options) Given(name string) bool { return o.given[name] }

// Validate reports every problem with o at once, each naming the option as
// the user spells it. It never changes a value.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	listen, hostPort := o.listenSet(), o.hostPortSet()
	if listen && hostPort {
		bad("host or port may not be set if listen is set")
	}
	if len(o.Sockets) > 0 || o.SocketsFrom != "" {
		if listen {
			bad("socket may not be set if listen is set")
		}
		if hostPort {
			bad("host or port may not be set if sockets is set")
		}
		if o.UnixSocket != "" {
			bad("unix_socket may not be set if sockets is set")
		}
	}
	if o.SocketsFrom != "" && o.SocketsFrom != "systemd" {
		bad("sockets: only \"systemd\" can be given as text (listeners are given from Go), got %q", o.SocketsFrom)
	}
	if o.UnixSocket != "" {
		if hostPort {
			bad("unix_socket may not be set if host or port is set")
		}
		if listen {
			bad("unix_socket may not be set if listen is set")
		}
	}
	o.validateProxy(bad)
	if o.UnixSocketPerms > 0o777 {
		bad("unix_socket_perms must be between 000 and 777, got %o", o.UnixSocketPerms)
	}
	positive := map[string]int64{
		"threads":                 int64(o.Threads),
		"max_request_header_size": int64(o.MaxRequestHeaderSize),
		"max_request_body_size":   o.MaxRequestBodySize,
		"inbuf_overflow":          int64(o.InbufOverflow),
		"outbuf_high_watermark":   int64(o.OutbufHighWatermark),
		"outbuf_overflow":         int64(o.OutbufOverflow),
		"recv_bytes":              int64(o.RecvBytes),
		"backlog":                 int64(o.Backlog),
		"connection_limit":        int64(o.ConnectionLimit),
		"send_bytes":              int64(o.SendBytes),
		"asyncore_loop_timeout":   int64(o.AsyncoreLoopTimeout),
		"channel_timeout":         int64(o.ChannelTimeout),
		"cleanup_interval":        int64(o.CleanupInterval),
		"request_header_timeout":  int64(o.RequestHeaderTimeout),
		"request_body_timeout":    int64(o.RequestBodyTimeout),
		"send_timeout":            int64(o.SendTimeout),
	}
	for _, opt := range table {
		if v, ok := positive[opt.Name]; ok && v < 1 {
			bad("%s must be at least 1, got %d", opt.Name, v)
		}
	}
	if o.RequestBodyMinRate < 0 {
		bad("request_body_min_rate must be at least 0, got %d", o.RequestBodyMinRate)
	}
	if o.ChannelRequestLookahead < 0 {
		bad("channel_request_lookahead must be at least 0, got %d", o.ChannelRequestLookahead)
	}
	if o.Port < 0 || o.Port > 65535 {
		bad("port must be between 0 and 65535, got %d", o.Port)
	}
	if len(o.Listen) == 0 {
		bad("listen must name at least one address")
	}
	if !o.IPv4 && !o.IPv6 {
		bad("ipv4 and ipv6 may not both be false")
	}
	if o.ProxyProtocol && o.TrustedProxy == "" {
		bad("proxy_protocol has no meaning without setting trusted_proxy")
	}
	if o.ReusePort && (o.UnixSocket != "" || len(o.Sockets) > 0 || o.SocketsFrom != "") {
		bad("reuse_port may not be set with unix_socket or sockets")
	}
	if o.EventLoops < 0 {
		bad("event_loops must be at least 0, got %d", o.EventLoops)
	}
	if o.AccessLogFormat != "combined" && o.AccessLogFormat != "json" {
		bad("access_log_format must be combined or json, got %q", o.AccessLogFormat)
	}
	if o.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(o.MetricsListen); err != nil {
			bad("metrics_listen must be host:port, got %q", o.MetricsListen)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("metrics_listen's port must be a number from 0 to 65535, got %q", port)
		}
	}
	return errors.Join(errs...)
}

// ProxyHeaders are the forwarding headers waitress knows, lower-case: the
// values trusted_proxy_headers accepts. Read only.
var ProxyHeaders = []string{"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-by", "forwarded"}

// validateProxy applies waitress's rules for the trusted_proxy options,
// and checks each trusted_proxy entry is an address, a CIDR range,
// "localhost" or "*".
func (o *Options) validateProxy(bad func(string, ...any)) {
	if o.TrustedProxy == "" {
		if o.given["trusted_proxy_count"] {
			bad("trusted_proxy_count has no meaning without setting trusted_proxy")
		}
		if len(o.TrustedProxyHeaders) > 0 {
			bad("trusted_proxy_headers has no meaning without setting trusted_proxy")
		}
	}
	if o.TrustedProxyCount < 1 {
		bad("trusted_proxy_count must be at least 1, got %d", o.TrustedProxyCount)
	}
	for _, e := range strings.FieldsFunc(o.TrustedProxy, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if e == "*" || e == "localhost" {
			continue
		}
		if _, err := netip.ParsePrefix(e); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(strings.Trim(e, "[]")); err != nil {
			bad("trusted_proxy: %q is not an address, a CIDR range, localhost or *", e)
		}
	}
	forwarded, xforwarded := false, false
	for _, h := range o.TrustedProxyHeaders {
		if !slices.Contains(ProxyHeaders, h) {
			bad("Received unknown trusted_proxy_headers value (%s) expected one of %s", h, strings.Join(ProxyHeaders, ", "))
		}
		forwarded = forwarded || h == "forwarded"
		xforwarded = xforwarded || strings.HasPrefix(h, "x-forwarded-")
	}
	if forwarded && xforwarded {
		bad("The Forwarded proxy header and the X-Forwarded-{By,Host,Proto,Port,For} headers are mutually exclusive. Can't trust both!")
	}
}

// listenSet reports whether listen was set, by Set or to a value other
// than its default (a Go program sets fields, not Set): the conflict rules
// hold for every way in.
func (o *Options) listenSet() bool {
	return o.given["listen"] || !(len(o.Listen) == 1 && o.Listen[0] == "0.0.0.0:8080")
}

// hostPortSet reports the same of host or port.
func (o *Options) hostPortSet() bool {
	return o.given["host"] || o.given["port"] || o.Host != "0.0.0.0" || o.Port != 8080
}

// ListenAddrs returns the host:port entries to listen on: listen, unless
// host or port was given, in which case the single host:port.
func (o *Options) ListenAddrs() []string {
	if o.given["host"] || o.given["port"] || (len(o.Listen) == 1 && o.Listen[0] == "0.0.0.0:8080" &&
		(o.Host != "0.0.0.0" || o.Port != 8080)) {
		return []string{JoinHostPort(o.Host, o.Port)}
	}
	return o.Listen
}

// JoinHostPort joins a host and port, bracketing IPv6 literals.
func JoinHostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

func strOpt(name, def, unit, doc string, f func(*Options) *string) Option {
	return Option{Name: name, Kind: Str, Default: def, Unit: unit, Doc: doc,
		get: func(o *Options) string { return *f(o) },
		set: func(o *Options, v string) error { *f(o) = v; return nil }}
}

func intOpt(name, def, unit, doc string, f func(*Options) *int) Option {
	return Option{Name: name, Kind: Int, Default: def, Unit: unit, Doc: doc,
		get: func(o *Options) string { return strconv.Itoa(*f(o)) },
		set: func(o *Options, v string) error {
			n, err := parseInt(v, strconv.IntSize)
			*f(o) = int(n)
			return err
		}}
}

func int64Opt(name, def, unit, doc string, f func(*Options) *int64) Option {
	return Option{Name: name, Kind: Int, Default: def, Unit: unit, Doc: doc,
		get: func(o *Options) string { return strconv.FormatInt(*f(o), 10) },
		set: func(o *Options, v string) (err error) { *f(o), err = parseInt(v, 64); return err }}
}

func boolOpt(name, def, doc string, f func(*Options) *bool) Option {
	return Option{Name: name, Kind: Bool, Default: def, Doc: doc,
		get: func(o *Options) string { return strconv.FormatBool(*f(o)) },
		set: func(o *Options, v string) (err error) { *f(o), err = ParseBool(v); return err }}
}

// prefixOpt parses like waitress's slash_fixed_str: surrounding whitespace
// and slashes go, and a non-empty value gets one leading slash.
func prefixOpt(name, def, doc string, f func(*Options) *string) Option {
	return Option{Name: name, Kind: Str, Default: def, Doc: doc,
		get: func(o *Options) string { return *f(o) },
		set: func(o *Options, v string) error {
			v = strings.Trim(strings.TrimSpace(v), "/")
			if v != "" {
				v = "/" + v
			}
			*f(o) = v
			return nil
		}}
}

func listOpt(name, def, doc string, f func(*Options) *[]string) Option {
	return Option{Name: name, Kind: List, Default: def, Doc: doc,
		get: func(o *Options) string { return strings.Join(*f(o), " ") },
		set: func(o *Options, v string) error { *f(o) = splitList(v); return nil }}
}

// splitList splits a list option's value on white space and commas.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// parseInt accepts what waitress's int() accepts — surrounding whitespace, a
// sign and _ separators between digits — and nothing else.
func parseInt(v string, bits int) (int64, error) {
	s := strings.TrimSpace(v)
	if strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	return n, nil
}

// ParseBool accepts waitress's true spellings (t, true, y, yes, on, 1) and
// their false counterparts (f, false, n, no, off, 0), in any case. Anything
// else is an error, where waitress would quietly read false.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "t", "true", "y", "yes", "on", "1":
		return true, nil
	case "f", "false", "n", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true/false, yes/no, on/off or 1/0)", v)
}
