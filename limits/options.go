// Package limits holds waitron's options once. The Options struct is the
// table: each field's tag gives the option's waitress name, its default as
// a user would write it, its unit and its bounds, and its comment is its
// documentation. Table, Set, Get, Validate, the command line, the ini file
// and docs/options.md are all driven by it (the comments reach the running
// program through docs_gen.go, which go test ./limits -update writes and a
// test keeps current).
package limits

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Options is the complete configuration of a waitron server. The zero value
// is not useful; start from Default(). Durations are time.Duration here; by
// name (Set, the command line, the ini file) they are waitress's integer
// seconds, or a Go duration such as 1m30s.
type Options struct {
	// Host of the default listener; builds listen = host:port when host or port is given. Conflicts with
	// listen.
	Host string `opt:"host" default:"0.0.0.0"`
	// Port of the default listener, and the port of listen entries that name none. Conflicts with listen.
	Port int `opt:"port" default:"8080" min:"0" max:"65535"`
	// Space- or comma-separated host:port entries to listen on (repeatable: each adds entries). [v6]:port
	// for IPv6, * for every address, a missing port means port.
	Listen []string `opt:"listen" default:"0.0.0.0:8080"`
	// Listen on IPv4 addresses: * and host names expand to their IPv4 addresses, and IPv4 literals are
	// allowed.
	IPv4 bool `opt:"ipv4" default:"true"`
	// Listen on IPv6 addresses (always v6-only sockets): * and host names expand to their IPv6 addresses,
	// and IPv6 literals are allowed.
	IPv6 bool `opt:"ipv6" default:"true"`
	// Already-bound sockets to serve on instead of host/port/listen/unix_socket: from Go, listeners in
	// Options.Sockets; as a string, "systemd" for systemd socket activation (LISTEN_FDS, LISTEN_PID). All
	// Internet or all UNIX stream sockets.
	SocketsFrom string `opt:"sockets" default:""`
	// Sockets are listeners made elsewhere that the server adopts (and closes at shutdown), set from
	// Go: the sockets option's other form. Not settable by name.
	Sockets []net.Listener
	// Path of a unix-domain socket to listen on instead of TCP. A socket file already there is replaced;
	// any other file there is an error. Removed on shutdown. Conflicts with host, port and listen.
	UnixSocket string `opt:"unix_socket" default:""`
	// Permission bits (octal) of the unix_socket file, applied right after it is created.
	UnixSocketPerms os.FileMode `opt:"unix_socket_perms" default:"600" min:"000" max:"777"`
	// Space- or comma-separated host:port entries to serve HTTPS on (TLS, then HTTP/1.1, or HTTP/2 by
	// ALPN: http2), written as listen's, beside listen's plain ones; when tls_listen is set and neither listen nor host/port is,
	// only these are served. Needs certfile and keyfile (from Go: or TLSConfig). Not with unix_socket or
	// sockets. Not in waitress.
	TLSListen []string `opt:"tls_listen" default:""`
	// PEM file of the certificate chain for tls_listen, leaf first. It and keyfile are read again when
	// either file changes (looked at every second) or on Server.ReloadTLS (the command: SIGHUP); open
	// connections keep theirs, new handshakes get the new one, and a reload that fails keeps the old pair
	// and logs why. Not in waitress.
	CertFile string `opt:"certfile" default:""`
	// PEM file of certfile's private key. Not in waitress.
	KeyFile string `opt:"keyfile" default:""`
	// The lowest TLS version tls_listen accepts. Not in waitress.
	TLSMinVersion string `opt:"tls_min_version" default:"1.2" choices:"1.2 1.3"`
	// PEM file of the CA certificates for mutual TLS: every client must present a certificate one of
	// them signed (crypto/tls's RequireAndVerifyClientCert), and handlers find it in r.TLS. Empty: no
	// client certificate is asked for. Not in waitress.
	ClientCA string `opt:"client_ca" default:""`
	// A TLS handshake must complete within this time from the connection's accept; otherwise the
	// connection is closed (close reason tls_handshake_timeout). Not in waitress.
	TLSHandshakeTimeout time.Duration `opt:"tls_handshake_timeout" default:"10" unit:"seconds" min:"1"`
	// The most TLS handshakes in progress at once, each on a goroutine of its own; while this many run,
	// new TLS clients wait in the listen queue (plain listeners are not held up). Whatever this bound,
	// the handshakes' public-key operations run on at most GOMAXPROCS-1 processors at once (one on a
	// single processor), so a flood of ClientHellos leaves processor time to the requests of the clients
	// already connected. Not in waitress.
	TLSHandshakeLimit int `opt:"tls_handshake_limit" default:"256" min:"1"`
	// Serve HTTP/2 on tls_listen to clients that offer it by ALPN (h2), with Go's HTTP/2 server
	// (golang.org/x/net/http2) for the connection and waitron's workers for the handlers: at most threads
	// handlers run at once across HTTP/1 and HTTP/2. net/http handlers only: the fasthttp adapter offers
	// HTTP/1.1. Not in waitress.
	HTTP2 bool `opt:"http2" default:"true"`
	// On plain listeners, take HTTP/2 from clients that start with its connection preface (h2c by prior
	// knowledge, as gRPC clients and proxies configured for h2c do) instead of answering 505. An HTTP/1.1
	// Upgrade: h2c is not taken (as net/http). Needs http2. Not in waitress.
	H2C bool `opt:"h2c" default:"true"`
	// The most streams (requests) an HTTP/2 client may have open at once on one connection. Not in
	// waitress.
	HTTP2MaxConcurrentStreams int `opt:"http2_max_concurrent_streams" default:"250" min:"1"`
	// TLSConfig, set from Go, is the TLS configuration of tls_listen (Certificates or GetCertificate,
	// ClientAuth, CipherSuites …), used instead of certfile and keyfile; tls_min_version and client_ca
	// still apply when set. NextProtos is the server's. Not settable by name.
	TLSConfig *tls.Config
	// Size of the worker pool that runs handlers: never more handlers run at once.
	Threads int `opt:"threads" default:"4" min:"1"`
	// Load shedding: how many complete requests may wait for a worker at once. A request that finds
	// this many waiting is answered 503 with Retry-After and Connection: close, without running its
	// handler (counted as shed). 0: no bound (waitress: requests wait as long as the queue takes). Not
	// in waitress.
	QueueLimit int `opt:"queue_limit" default:"0" min:"0"`
	// Load shedding: how long a complete request may wait for a worker (a Go duration such as 500ms,
	// or seconds). A request a worker takes after waiting longer is answered 503 with Retry-After and
	// Connection: close, without running its handler (counted as shed). 0: no bound. Not in waitress.
	QueueTimeout time.Duration `opt:"queue_timeout" default:"0" unit:"seconds" min:"0"`
	// Server header value and the tag in server-generated error bodies; empty sends no Server header.
	Ident string `opt:"ident" default:"waitron"`
	// Put the panic value and stack in the body of the 500 sent when a handler panics.
	ExposeTracebacks bool `opt:"expose_tracebacks" default:"false"`
	// Largest request head (request line and fields, with their CRLFs); more is answered 431, also while
	// the head is still arriving. The same bound applies to a chunked body's trailer section, and it is
	// part of what a client may send ahead while its request is served (this plus inbuf_overflow; past
	// that the connection closes).
	MaxRequestHeaderSize int `opt:"max_request_header_size" default:"262144" unit:"bytes" min:"1"`
	// Largest request body, counted on decoded bytes; more is answered 413. A body of exactly this size is
	// accepted.
	MaxRequestBodySize int64 `opt:"max_request_body_size" default:"1073741824" unit:"bytes" min:"1"`
	// Request bodies larger than this are spooled to a temporary file. The file is unlinked as soon as it
	// is created (nothing is left in the directory) and, when the request ends, kept open for the next
	// large body while the kept files hold at most 16 MiB, else closed.
	InbufOverflow int `opt:"inbuf_overflow" default:"524288" unit:"bytes" min:"1"`
	// Directory for the temporary files of request bodies over inbuf_overflow and of response output over
	// outbuf_overflow. Empty: the system's temporary directory ($TMPDIR, else /tmp). It must exist and be
	// writable at start-up, which also logs its free space (a warning when it cannot hold one body of
	// max_request_body_size). Not in waitress.
	SpoolDir string `opt:"spool_dir" default:""`
	// Response output pending for a connection beyond this goes to a temporary file, fed to the client as
	// it reads and removed afterwards; memory per slow reader stays near this.
	OutbufOverflow int `opt:"outbuf_overflow" default:"1048576" unit:"bytes" min:"1"`
	// A handler's Write blocks while more than this many response bytes are pending for its connection.
	OutbufHighWatermark int `opt:"outbuf_high_watermark" default:"16777216" unit:"bytes" min:"1"`
	// Length of each listening socket's accept queue (the kernel caps it at net.core.somaxconn).
	Backlog int `opt:"backlog" default:"1024" min:"1"`
	// Most client connections served at once (listeners are not counted). Further clients are accepted but
	// wait, unread, for a free slot in arrival order; at most backlog of them wait, each at most
	// channel_timeout, and beyond that a client gets 503 and is closed.
	ConnectionLimit int `opt:"connection_limit" default:"100" min:"1"`
	// Size of the pieces a response leaves the handler in: a handler that returns having written no more
	// than this (without flushing) gets a Content-Length; longer output is sent as it reaches this size.
	// (waitress's deprecated default of 1 would chunk every response.)
	SendBytes int `opt:"send_bytes" default:"65536" unit:"bytes" min:"1"`
	// Accepted for waitress compatibility; any value behaves the same here. A client that closes its
	// connection while its request runs always cancels the request's context (as net/http does, and
	// waitress's client_disconnected with a value above 0), and what the handler still writes is delivered
	// while the socket takes it. One further request is always read ahead (gnet cannot pause reading) and
	// pipelined input is bounded in bytes. A startup note says so when set.
	ChannelRequestLookahead int `opt:"channel_request_lookahead" default:"0" min:"0"`
	// Log socket errors (resets, broken pipes, failed writes) as warnings; when false they are logged at
	// debug level.
	LogSocketErrors bool `opt:"log_socket_errors" default:"true"`
	// Accepted for waitress compatibility. Here: the tick on which idle connections are looked for runs at
	// most this often (Date is refreshed every second regardless). A startup note says so when set.
	AsyncoreLoopTimeout time.Duration `opt:"asyncore_loop_timeout" default:"1" unit:"seconds" min:"1"`
	// Accepted for waitress compatibility. It has no effect: gnet always uses epoll, which has no select()
	// descriptor limit. A startup note says so when set.
	AsyncoreUsePoll bool `opt:"asyncore_use_poll" default:"false"`
	// Bytes read from a socket at a time: the size of each event loop's read buffer (one per loop, not per
	// connection; rounded up to a power of two, at least 1024). waitress's default is 8192; 65536 (gnet's
	// own) takes an upload in an eighth of the reads.
	RecvBytes int `opt:"recv_bytes" default:"65536" unit:"bytes" min:"1"`
	// Peers allowed to supply proxy headers: an address, or several addresses and CIDR ranges separated by
	// spaces or commas, "localhost" for unix-socket peers, or * for every peer (waitress takes one address
	// or *).
	TrustedProxy string `opt:"trusted_proxy" default:""`
	// How many of the rightmost X-Forwarded-For, X-Forwarded-Host and Forwarded elements come from trusted
	// proxies; the leftmost of those is used. Needs trusted_proxy.
	TrustedProxyCount int `opt:"trusted_proxy_count" default:"1" min:"1"`
	// Proxy headers to use from a trusted proxy, space- or comma-separated (repeatable: each adds
	// headers): x-forwarded-for, x-forwarded-host, x-forwarded-proto, x-forwarded-port, x-forwarded-by,
	// forwarded (not together with any x-forwarded-*). Empty with trusted_proxy set means
	// x-forwarded-proto. Needs trusted_proxy.
	TrustedProxyHeaders []string `opt:"trusted_proxy_headers" default:"" parse:"lower"`
	// Remove the proxy headers (Forwarded, X-Forwarded-For/-Host/-Proto/-Port/-By) that were not used from
	// a trusted proxy before the handler sees the request, also when trusted_proxy is not set.
	ClearUntrustedProxyHeaders bool `opt:"clear_untrusted_proxy_headers" default:"true"`
	// Log a warning naming the untrusted proxy headers that were removed.
	LogUntrustedProxyHeaders bool `opt:"log_untrusted_proxy_headers" default:"false"`
	// The scheme handlers see in RequestInfo(r).Scheme unless a trusted proxy says otherwise.
	URLScheme string `opt:"url_scheme" default:"http"`
	// Path prefix the application is mounted at (waitress's SCRIPT_NAME): stripped from r.URL.Path when
	// the path is the prefix or under it, and reported as RequestInfo(r).ScriptName. Written with one
	// leading and no trailing slash.
	URLPrefix string `opt:"url_prefix" default:"" parse:"prefix"`
	// The server name handlers see in RequestInfo(r).ServerName (not taken from Host) unless a trusted
	// proxy reports a host.
	ServerName string `opt:"server_name" default:"waitron.invalid"`
	// A connection with no request in flight and no traffic either way for this long is closed (an idle
	// keep-alive, a stalled partial request, a client that stopped reading). Also bounds how long a close
	// waits for a non-reading client to take the last response.
	ChannelTimeout time.Duration `opt:"channel_timeout" default:"120" unit:"seconds" min:"1"`
	// A request head must arrive in full within this time, counted from the connection's start (first
	// request) or from its first byte (later requests); otherwise 408 and close. Not in waitress, whose
	// single idle timer lets a slowloris client hold a slot forever.
	RequestHeaderTimeout time.Duration `opt:"request_header_timeout" default:"60" unit:"seconds" min:"1"`
	// A request body may not stall longer than this between two reads; otherwise 408 and close (over
	// HTTP/2, where the body streams to the handler, the handler's read fails instead). Not in waitress.
	RequestBodyTimeout time.Duration `opt:"request_body_timeout" default:"60" unit:"seconds" min:"1"`
	// After request_body_timeout seconds, a request body must have averaged at least this rate; otherwise
	// 408 and close, so trickled bodies cannot hold connection slots. 0 turns the rate check off.
	// HTTP/1 only. Not in waitress.
	RequestBodyMinRate int `opt:"request_body_min_rate" default:"1024" unit:"bytes/second" min:"0"`
	// A connection with response bytes pending whose client acknowledges none for this long is closed
	// (judged by what the client took, the kernel's unsent and unacknowledged bytes included, so a slow but
	// steady reader is never cut); a handler blocked writing to it is released with an error. Not in
	// waitress, where such a client pins a worker forever.
	SendTimeout time.Duration `opt:"send_timeout" default:"60" unit:"seconds" min:"1"`
	// Accept a PROXY protocol header (v1 or v2: HAProxy send-proxy/send-proxy-v2, AWS NLB, nginx
	// proxy_protocol) at the start of connections from trusted_proxy peers (on tls_listen, before the TLS
	// handshake): the client it names becomes
	// the request's RemoteAddr, for the proxy-header rules and the access log too. A header from any other
	// peer, or a malformed, truncated or over-long one, closes the connection with a logged reason before
	// any handler sees it; connections without one are served as usual. Needs trusted_proxy. Not in
	// waitress.
	ProxyProtocol bool `opt:"proxy_protocol" default:"false"`
	// Bind the listen addresses with SO_REUSEPORT, so several waitron processes serve one port and the
	// kernel spreads new connections among them: start the new one, stop the old one gracefully, and no
	// connection is refused (zero-downtime restart). metrics_listen is bound the same way, so the new
	// process can start beside the old one. Not with unix_socket or sockets. Not in waitress.
	ReusePort bool `opt:"reuse_port" default:"false"`
	// Number of event loops doing the socket I/O; 0 follows GOMAXPROCS (which follows the container's CPU
	// limit since Go 1.25). Not in waitress.
	EventLoops int `opt:"event_loops" default:"0" min:"0"`
	// Write one line per response to this file (appended; - for standard output): off when empty, as in
	// waitress. Lines are written by a goroutine of their own, never by an event loop. Not in waitress
	// (paste's TransLogger gives its users the same).
	AccessLog string `opt:"access_log" default:""`
	// combined: Apache's and nginx's combined format (client address as the trusted-proxy rules resolved
	// it, time, request line, status, body bytes, Referer, User-Agent), followed by the duration in
	// seconds and, when the connection closes after the response, close=<reason>; json: one log/slog JSON
	// record per response with the same fields.
	AccessLogFormat string `opt:"access_log_format" default:"combined" choices:"combined json"`
	// host:port of an operations listener apart from the application (a plain net/http server): /metrics
	// in the Prometheus text format (every name prefixed waitron_), /healthz (200 while the process
	// serves) and /readyz (200; 503 from the moment a graceful shutdown starts, so a load balancer stops
	// sending before the drain). Empty: none. From Go, the program imports package
	// github.com/waitron/waitron/metrics (the command does). Not in waitress.
	MetricsListen string `opt:"metrics_listen" default:""`
	// How often idle connections are looked for (channel_timeout): a connection is closed between
	// channel_timeout and channel_timeout + cleanup_interval after it fell idle.
	CleanupInterval time.Duration `opt:"cleanup_interval" default:"30" unit:"seconds" min:"1"`

	// given records the options set through Set (the command line or a
	// config file), so conflicts can be judged the way waitress judges them:
	// on what the user said, not on values that happen to equal a default;
	// and how the user spelled each (--max-request-body-size, or the ini
	// file's key), which Validate's errors name.
	given map[string]string
}

// Kind is the type of an option's value, which decides how a string is
// parsed and how the option appears on the command line.
type Kind int

const (
	Int      Kind = iota // a decimal integer
	Bool                 // true/false, yes/no, on/off, 1/0
	Str                  // any string
	List                 // strings separated by white space or commas; setting it again adds to it
	Duration             // integer seconds, or a Go duration (1m30s); a time.Duration in Options
	Octal                // octal permission bits, e.g. 600
)

// String returns the kind as docs/options.md and --help show it.
func (k Kind) String() string {
	return [...]string{"int", "bool", "string", "list", "duration", "octal"}[k]
}

// Option describes one option, as the tag and comment of its Options field
// give it.
type Option struct {
	Name     string // waitress's spelling, e.g. max_request_body_size
	Kind     Kind
	Default  string   // the default as a user would write it
	Unit     string   // "bytes", "seconds", … for docs; empty when none
	Min, Max string   // the bounds, written as values of the option; empty when none
	Choices  []string // the only values allowed, when not empty
	Doc      string
	field    int    // index of the field in Options
	parse    string // a special parsing: "lower" (a list kept lower-case), "prefix" (url_prefix)
}

// Flag returns the option's command-line spelling, e.g. --max-request-body-size.
func (o Option) Flag() string { return "--" + strings.ReplaceAll(o.Name, "_", "-") }

// Table returns every option in documentation order (the order of the
// fields of Options).
func Table() []Option { return table }

var table = buildTable()

// buildTable reads the option table off the fields of Options.
func buildTable() []Option {
	var t []Option
	typ := reflect.TypeFor[Options]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, ok := f.Tag.Lookup("opt")
		if !ok {
			continue
		}
		opt := Option{Name: name, Default: f.Tag.Get("default"), Unit: f.Tag.Get("unit"), Min: f.Tag.Get("min"),
			Max: f.Tag.Get("max"), Choices: strings.Fields(f.Tag.Get("choices")), Doc: optionDocs[name], field: i,
			parse: f.Tag.Get("parse")}
		switch f.Type {
		case reflect.TypeFor[time.Duration]():
			opt.Kind = Duration
		case reflect.TypeFor[os.FileMode]():
			opt.Kind = Octal
		default:
			switch f.Type.Kind() {
			case reflect.Int, reflect.Int64:
				opt.Kind = Int
			case reflect.Bool:
				opt.Kind = Bool
			case reflect.String:
				opt.Kind = Str
			case reflect.Slice:
				opt.Kind = List
			default:
				panic("limits: option " + name + " has a type the table does not know: " + f.Type.String())
			}
		}
		t = append(t, opt)
	}
	return t
}

func (opt Option) value(o *Options) reflect.Value { return reflect.ValueOf(o).Elem().Field(opt.field) }

// get formats the option's value in o as a user would write it.
func (opt Option) get(o *Options) string {
	v := opt.value(o)
	switch opt.Kind {
	case Int:
		return strconv.FormatInt(v.Int(), 10)
	case Bool:
		return strconv.FormatBool(v.Bool())
	case List:
		return strings.Join(v.Interface().([]string), " ")
	case Duration:
		return formatDuration(time.Duration(v.Int()))
	case Octal:
		return strconv.FormatUint(v.Uint(), 8)
	}
	return v.String()
}

// set parses s as the option's value and stores it in o.
func (opt Option) set(o *Options, s string) error {
	v := opt.value(o)
	switch opt.Kind {
	case Int:
		n, err := parseInt(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case Bool:
		b, err := ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case List:
		if opt.parse == "lower" {
			s = strings.ToLower(s)
		}
		v.Set(reflect.ValueOf(splitList(s)))
	case Duration:
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case Octal:
		n, err := parseOctal(s)
		if err != nil {
			return err
		}
		v.SetUint(n)
	default:
		if opt.parse == "prefix" {
			s = fixPrefix(s)
		}
		v.SetString(s)
	}
	return nil
}

// number returns the option's value in o as a number, for the bounds; ok
// is false for kinds without bounds.
func (opt Option) number(o *Options) (n int64, ok bool) {
	v := opt.value(o)
	switch opt.Kind {
	case Int, Duration:
		return v.Int(), true
	case Octal:
		return int64(v.Uint()), true
	}
	return 0, false
}

// bound parses one of the option's bounds as a number.
func (opt Option) bound(s string) int64 {
	var o Options
	if err := opt.set(&o, s); err != nil {
		panic("limits: bad bound for " + opt.Name + ": " + err.Error())
	}
	n, _ := opt.number(&o)
	return n
}

// defaults are the options with every default applied.
var defaults = func() Options {
	var o Options
	for _, opt := range table {
		if err := opt.set(&o, opt.Default); err != nil {
			panic("limits: bad default for " + opt.Name + ": " + err.Error())
		}
	}
	return o
}()

// Default returns the options with every default applied.
func Default() Options {
	o := defaults
	o.Listen = slices.Clone(o.Listen)
	o.TrustedProxyHeaders = slices.Clone(o.TrustedProxyHeaders)
	o.TLSListen = slices.Clone(o.TLSListen)
	return o
}

// Lookup returns the option named name (waitress spelling; dashes, a
// flag's leading --, and the environment variable's spelling are also
// accepted) and whether it exists.
func Lookup(name string) (Option, bool) {
	if env, ok := strings.CutPrefix(name, EnvPrefix); ok {
		name = strings.ToLower(env)
	}
	name = strings.ReplaceAll(strings.TrimPrefix(name, "--"), "-", "_")
	for _, opt := range table {
		if opt.Name == name {
			return opt, true
		}
	}
	return Option{}, false
}

// EnvPrefix begins the environment variable of every option:
// WAITRON_THREADS for threads. Lookup and Set take that spelling too.
const EnvPrefix = "WAITRON_"

// Env returns the option's environment variable, e.g. WAITRON_THREADS.
func (o Option) Env() string { return EnvPrefix + strings.ToUpper(o.Name) }

// Set parses value for the option called name and records that the option
// was given, and as what (name as the user spelled it: the flag with its
// --, or the ini file's key); Validate's errors name it so. Repeated list
// options accumulate, like --listen on the command line.
func (o *Options) Set(name, value string) error {
	opt, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown option %q", name)
	}
	if _, again := o.given[opt.Name]; again && opt.Kind == List {
		value = opt.get(o) + " " + value // a repeated list option adds to it
	}
	if err := opt.set(o, value); err != nil {
		return &OptionError{Option: opt.Name, Spelled: name, Value: value, Reason: err.Error()}
	}
	if o.given == nil {
		o.given = map[string]string{}
	}
	o.given[opt.Name] = name
	return nil
}

// Reset forgets that the option was given, so that the next Set of a list
// option replaces its value instead of adding to it (the environment over
// the config file). It does not change the value.
func (o *Options) Reset(name string) error {
	opt, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("unknown option %q", name)
	}
	delete(o.given, opt.Name)
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

// Clone returns a copy of o that shares nothing Set changes with it: its
// lists and its record of the options given. (A plain copy shares both.)
func (o *Options) Clone() Options {
	c := *o
	c.Listen = slices.Clone(o.Listen)
	c.TrustedProxyHeaders = slices.Clone(o.TrustedProxyHeaders)
	c.TLSListen = slices.Clone(o.TLSListen)
	c.Sockets = slices.Clone(o.Sockets)
	c.given = maps.Clone(o.given)
	return c
}

// Given reports whether the option was set through Set.
func (o *Options) Given(name string) bool { _, ok := o.given[name]; return ok }

// IsSet reports whether the option was given: set through Set, or to a
// value other than its default (a Go program sets fields, not Set). The
// conflict rules and the notes on compatibility options go by it, so an
// option set from Go counts as one given by name.
func (o *Options) IsSet(name string) bool {
	if o.Given(name) {
		return true
	}
	opt, ok := Lookup(name)
	return ok && opt.get(o) != opt.get(&defaults)
}

// An OptionError is one problem with an option's value, or with options
// that conflict. Validate returns every one it finds, joined (errors.Join),
// so a program can take them apart with errors.As or by unwrapping.
type OptionError struct {
	Option  string // the option at fault, in waitress's spelling (the first named, for a conflict)
	Spelled string // how the user gave it (--threads, or an ini key), when through Set; "" from Go
	Value   string // its value as a user would write it; "" for a conflict
	Reason  string // why, e.g. "must be at least 1"
	text    string // the whole message, when it is not the option + Reason (waitress's wording for conflicts)
}

func (e *OptionError) Error() string {
	name := e.Option
	if e.Spelled != "" {
		name = e.Spelled
	}
	switch {
	case e.text != "":
		return e.text
	case e.Value != "" && !strings.Contains(e.Reason, e.Value):
		return name + " " + e.Reason + ", got " + e.Value
	}
	return name + ": " + e.Reason
}

// Validate reports every problem with o at once (each an *OptionError). It
// never changes a value.
func (o *Options) Validate() error {
	var errs []error
	bad := func(opt, value, reason string) {
		errs = append(errs, &OptionError{Option: opt, Spelled: o.given[opt], Value: value, Reason: reason})
	}
	conflict := func(opt, text string) { errs = append(errs, &OptionError{Option: opt, Reason: text, text: text}) }
	for _, opt := range table {
		n, ok := opt.number(o)
		lo, hi := opt.Min != "", opt.Max != ""
		switch {
		case !ok:
		case lo && hi && (n < opt.bound(opt.Min) || n > opt.bound(opt.Max)):
			bad(opt.Name, opt.get(o), "must be between "+opt.Min+" and "+opt.Max)
		case lo && !hi && n < opt.bound(opt.Min):
			bad(opt.Name, opt.get(o), "must be at least "+opt.Min)
		}
		if len(opt.Choices) > 0 && !slices.Contains(opt.Choices, opt.get(o)) {
			bad(opt.Name, strconv.Quote(opt.get(o)), "must be "+strings.Join(opt.Choices, " or "))
		}
	}
	listen, hostPort := o.listenSet(), o.hostPortSet()
	if listen && hostPort {
		conflict("host", "host or port may not be set if listen is set")
	}
	if len(o.Sockets) > 0 || o.SocketsFrom != "" {
		if listen {
			conflict("sockets", "socket may not be set if listen is set")
		}
		if hostPort {
			conflict("host", "host or port may not be set if sockets is set")
		}
		if o.UnixSocket != "" {
			conflict("unix_socket", "unix_socket may not be set if sockets is set")
		}
	}
	if o.SocketsFrom != "" && o.SocketsFrom != "systemd" {
		bad("sockets", strconv.Quote(o.SocketsFrom), "takes only \"systemd\" as text (listeners are given from Go)")
	}
	if o.UnixSocket != "" {
		if hostPort {
			conflict("unix_socket", "unix_socket may not be set if host or port is set")
		}
		if listen {
			conflict("unix_socket", "unix_socket may not be set if listen is set")
		}
	}
	o.validateProxy(bad, conflict)
	if p := fixPrefix(o.URLPrefix); p != o.URLPrefix {
		bad("url_prefix", strconv.Quote(o.URLPrefix), fmt.Sprintf("must be empty or start with one slash and not end with one, as Set makes it: %q", p))
	}
	if len(o.Listen) == 0 && len(o.TLSListen) == 0 {
		bad("listen", "", "must name at least one address")
	}
	o.validateTLS(conflict)
	if !o.IPv4 && !o.IPv6 {
		conflict("ipv4", "ipv4 and ipv6 may not both be false")
	}
	if o.ProxyProtocol && o.TrustedProxy == "" {
		conflict("proxy_protocol", "proxy_protocol has no meaning without setting trusted_proxy")
	}
	if o.ReusePort && (o.UnixSocket != "" || len(o.Sockets) > 0 || o.SocketsFrom != "") {
		conflict("reuse_port", "reuse_port may not be set with unix_socket or sockets")
	}
	if o.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(o.MetricsListen); err != nil {
			bad("metrics_listen", strconv.Quote(o.MetricsListen), "must be host:port")
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("metrics_listen", strconv.Quote(port), "must have a port from 0 to 65535")
		}
	}
	return errors.Join(errs...)
}

// validateTLS checks that tls_listen has a certificate and that the TLS
// options are not set without it (files are read by the server, at New).
func (o *Options) validateTLS(conflict func(opt, text string)) {
	if len(o.TLSListen) == 0 {
		for _, name := range []string{"certfile", "keyfile", "client_ca"} {
			if o.IsSet(name) {
				conflict(name, name+" has no meaning without setting tls_listen")
			}
		}
		if o.TLSConfig != nil {
			conflict("tls_listen", "TLSConfig has no meaning without setting tls_listen")
		}
		return
	}
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		conflict("certfile", "certfile and keyfile must be set together")
	case o.CertFile == "" && o.TLSConfig == nil:
		conflict("tls_listen", "tls_listen needs certfile and keyfile (or, from Go, TLSConfig)")
	}
	if o.UnixSocket != "" || len(o.Sockets) > 0 || o.SocketsFrom != "" {
		conflict("tls_listen", "tls_listen may not be set with unix_socket or sockets")
	}

}

// ProxyHeaders are the forwarding headers waitress knows, lower-case: the
// values trusted_proxy_headers accepts. Read only.
var ProxyHeaders = []string{"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-by", "forwarded"}

// validateProxy applies waitress's rules for the trusted_proxy options,
// and checks each trusted_proxy entry is an address, a CIDR range,
// "localhost" or "*".
func (o *Options) validateProxy(bad func(opt, value, reason string), conflict func(opt, text string)) {
	if o.TrustedProxy == "" {
		if o.IsSet("trusted_proxy_count") {
			conflict("trusted_proxy_count", "trusted_proxy_count has no meaning without setting trusted_proxy")
		}
		if len(o.TrustedProxyHeaders) > 0 {
			conflict("trusted_proxy_headers", "trusted_proxy_headers has no meaning without setting trusted_proxy")
		}
	}
	_, wrong := ParseTrustedProxy(o.TrustedProxy)
	for _, e := range wrong {
		bad("trusted_proxy", strconv.Quote(e), fmt.Sprintf("%q is not an address, a CIDR range, localhost or *", e))
	}
	forwarded, xforwarded := false, false
	for _, h := range o.TrustedProxyHeaders {
		if l := strings.ToLower(h); l != h && slices.Contains(ProxyHeaders, l) {
			bad("trusted_proxy_headers", strconv.Quote(h), fmt.Sprintf("must be lower-case, as Set makes it: %q", l))
			continue
		}
		if !slices.Contains(ProxyHeaders, h) {
			errs := fmt.Sprintf("Received unknown trusted_proxy_headers value (%s) expected one of %s", h, strings.Join(ProxyHeaders, ", "))
			bad("trusted_proxy_headers", h, errs)
		}
		forwarded = forwarded || h == "forwarded"
		xforwarded = xforwarded || strings.HasPrefix(h, "x-forwarded-")
	}
	if forwarded && xforwarded {
		conflict("trusted_proxy_headers", "The Forwarded proxy header and the X-Forwarded-{By,Host,Proto,Port,For} headers are mutually exclusive. Can't trust both!")
	}
}

// TrustedProxy is the trusted_proxy option parsed: the one reading of it,
// for Validate and for the proxy-header rules.
type TrustedProxy struct {
	All      bool           // "*": every peer
	Local    bool           // "localhost": unix-socket peers
	Addrs    []netip.Addr   // IPv4-mapped addresses unmapped
	Prefixes []netip.Prefix // masked
}

// ParseTrustedProxy reads trusted_proxy's value: entries separated by
// white space or commas, each an address (IPv6 with or without brackets),
// a CIDR range, "localhost" or "*". wrong lists the entries that are none
// of those.
func ParseTrustedProxy(v string) (t TrustedProxy, wrong []string) {
	for _, e := range splitList(v) {
		switch {
		case e == "*":
			t.All = true
		case e == "localhost":
			t.Local = true
		case strings.Contains(e, "/"):
			pf, err := netip.ParsePrefix(e)
			if err != nil {
				wrong = append(wrong, e)
				continue
			}
			t.Prefixes = append(t.Prefixes, pf.Masked())
		default:
			a, err := netip.ParseAddr(strings.Trim(e, "[]"))
			if err != nil {
				wrong = append(wrong, e)
				continue
			}
			t.Addrs = append(t.Addrs, a.Unmap())
		}
	}
	return t, wrong
}

// listenSet reports whether listen was set, by Set or to a value other
// than its default (a Go program sets fields, not Set): the conflict rules
// hold for every way in.
func (o *Options) listenSet() bool {
	return o.Given("listen") || !slices.Equal(o.Listen, defaults.Listen)
}

// hostPortSet reports the same of host or port.
func (o *Options) hostPortSet() bool {
	return o.Given("host") || o.Given("port") || o.Host != defaults.Host || o.Port != defaults.Port
}

// ListenAddrs returns the plain host:port entries to listen on: listen,
// unless host or port was set, in which case the single host:port; none
// when only tls_listen was set.
func (o *Options) ListenAddrs() []string {
	if len(o.TLSListen) > 0 && !o.hostPortSet() && !o.listenSet() {
		return nil // only tls_listen was asked for
	}
	if o.hostPortSet() && !o.listenSet() {
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

// fixPrefix parses like waitress's slash_fixed_str: surrounding whitespace
// and slashes go, and a non-empty value gets one leading slash.
func fixPrefix(v string) string {
	v = strings.Trim(strings.TrimSpace(v), "/")
	if v != "" {
		v = "/" + v
	}
	return v
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

// parseDuration accepts waitress's integer seconds, or a Go duration
// ("1m30s", "500ms").
func parseDuration(v string) (time.Duration, error) {
	if n, err := parseInt(v, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) || n < -int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("%q seconds is out of range", v)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%q is neither integer seconds nor a duration such as 1m30s", v)
	}
	return d, nil
}

// formatDuration writes d as whole seconds when it is, else as a Go
// duration.
func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}

// parseOctal reads permission bits: 600, 0600 or 0o600.
func parseOctal(v string) (uint64, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(v), "0o"), "0O")
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an octal permission", v)
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
