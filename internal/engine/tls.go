package engine

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/waitron/waitron/internal/bufpool"
	"github.com/waitron/waitron/limits"
)

// TLS on the event loops, with crypto/tls as it is.
//
// A TLS listener's accept loop hands each connection to a goroutine of
// its own for the handshake (tls.Conn.Handshake over the socket on Go's
// poller, with tls_handshake_timeout as the socket's deadline; at most
// tls_handshake_limit at once). Once it completes, the socket is
// registered with gnet like a plain one, and the tls.Conn's transport
// (tlsTransport) is switched to the loop: from then on its Read takes the
// ciphertext gnet has read, and returns a temporary net.Error when there
// is no more, which crypto/tls treats as "try again" (it keeps a partial
// record and does not fail the connection). The loop decrypts into a
// plaintext buffer (conn.tlsFill) that the codec reads as it reads gnet's
// buffer on a plain connection. Every byte out is encrypted in one place,
// on its way into the output queue (writer.push, conn.write), under the
// connection's seal lock, so records leave in the order their sequence
// numbers were given. A hijack switches the transport back to the socket
// and hands the handler the tls.Conn itself.

// tlsServer is a server's TLS setup: the configuration its handshakes
// use, the certificate pair it reloads, and the bounds on handshakes.
type tlsServer struct {
	cfg     *tls.Config
	pair    *certPair // nil when the certificates come from Options.TLSConfig
	timeout time.Duration
	slots   chan struct{} // handshakes in progress (tls_handshake_limit)
	cpu     chan struct{} // handshakes in their public-key step
	log     *slog.Logger

	mu      sync.Mutex
	pending map[net.Conn]struct{} // sockets in a handshake, closed by stop
	stopped chan struct{}
	once    sync.Once
}

// newTLSServer builds the TLS setup from the options, reading certfile,
// keyfile and client_ca. nil without tls_listen.
func newTLSServer(o *limits.Options, log *slog.Logger) (*tlsServer, error) {
	if len(o.TLSListen) == 0 {
		return nil, nil
	}
	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	t := &tlsServer{timeout: o.TLSHandshakeTimeout, log: log, pending: map[net.Conn]struct{}{},
		slots: make(chan struct{}, o.TLSHandshakeLimit), stopped: make(chan struct{})}
	t.cpu = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))
	if o.CertFile != "" {
		t.pair = &certPair{certFile: o.CertFile, keyFile: o.KeyFile}
		if err := t.pair.load(); err != nil {
			return nil, err
		}
		cfg.Certificates, cfg.GetCertificate = nil, t.pair.get
	}
	if o.TLSConfig == nil || cfg.MinVersion == 0 || o.IsSet("tls_min_version") {
		cfg.MinVersion = tls.VersionTLS12
		if o.TLSMinVersion == "1.3" {
			cfg.MinVersion = tls.VersionTLS13
		}
	}
	if o.ClientCA != "" {
		pem, err := os.ReadFile(o.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("waitron: client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("waitron: client_ca %q holds no PEM certificate", o.ClientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	// HTTP/1.1 only: a client that offers h2 gets http/1.1 by ALPN.
	cfg.NextProtos = []string{"http/1.1"}
	user := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if tr, ok := hello.Conn.(*tlsTransport); ok {
			if err := tr.takeCPU(); err != nil {
				return nil, err
			}
		}
		if user != nil {
			return user(hello)
		}
		return nil, nil
	}
	if len(cfg.Certificates) == 0 && cfg.GetCertificate == nil {
		return nil, errors.New("waitron: tls_listen: TLSConfig has no certificate (Certificates or GetCertificate)")
	}
	t.cfg = cfg
	return t, nil
}

// certPair is certfile and keyfile, loaded, and what their files looked
// like then, so that a change is noticed (changed).
type certPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	mu                sync.Mutex
	seen              [2]fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampFile(p string) fileStamp {
	fi, err := os.Stat(p)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// load reads the pair; on failure the pair served stays as it was.
func (p *certPair) load() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := [2]fileStamp{stampFile(p.certFile), stampFile(p.keyFile)}
	c, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		p.seen = seen // not retried until a file changes again
		return fmt.Errorf("waitron: certfile/keyfile: %w", err)
	}
	p.seen = seen
	p.cur.Store(&c)
	return nil
}

// changed reports whether either file changed since the last load.
func (p *certPair) changed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen != [2]fileStamp{stampFile(p.certFile), stampFile(p.keyFile)}
}

func (p *certPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return p.cur.Load(), nil }

// reload reads certfile and keyfile again, keeping the pair served when
// they do not load. Any goroutine.
func (t *tlsServer) reload() error {
	if t == nil || t.pair == nil {
		return nil
	}
	if err := t.pair.load(); err != nil {
		t.log.Error("cannot reload the TLS certificate; still serving the one loaded before", "err", err)
		return err
	}
	t.log.Info("TLS certificate loaded", "certfile", t.pair.certFile)
	return nil
}

// tick reloads the pair when its files changed. The ticker's goroutine.
func (t *tlsServer) tick() {
	if t != nil && t.pair != nil && t.pair.changed() {
		go t.reload()
	}
}

// ReloadTLS reads certfile and keyfile again: new handshakes get the new
// pair, open connections keep theirs. When they do not load, the pair
// served stays, and the error says why.
func (s *Server) ReloadTLS() error { return s.tls.reload() }

// stop ends the handshakes in progress and refuses new ones.
func (t *tlsServer) stop() {
	if t == nil {
		return
	}
	t.once.Do(func() { close(t.stopped) })
	t.mu.Lock()
	for c := range t.pending {
		c.Close()
	}
	t.mu.Unlock()
}

// slot waits for a handshake slot; false once the server stops.
func (t *tlsServer) slot() bool {
	select {
	case t.slots <- struct{}{}:
		return true
	case <-t.stopped:
		return false
	}
}

// handshake runs the TLS handshake of nc, accepted on a TLS listener,
// and hands the connection to the event loops; it holds a handshake slot
// (slot), which it gives back. Its own goroutine.
func (s *Server) handshake(nc net.Conn, base *listenerBase) {
	t := s.tls
	defer func() { <-t.slots }()
	t.mu.Lock()
	select {
	case <-t.stopped:
		t.mu.Unlock()
		nc.Close()
		return
	default:
	}
	t.pending[nc] = struct{}{}
	t.mu.Unlock()
	deadline := time.Now().Add(t.timeout)
	_ = nc.SetDeadline(deadline)
	tr := &tlsTransport{nc: nc, srv: t, deadline: deadline}
	var remote net.Addr // the client a PROXY protocol header names
	if s.cfg.proxyProtocol {
		var err error
		if remote, tr.pre, err = s.readProxyPrefix(nc); err != nil {
			t.mu.Lock()
			delete(t.pending, nc)
			t.mu.Unlock()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.closes[CloseTLSHandshakeTimeout].Add(1) // nothing came: a stalled handshake
				s.log.Debug("connection closed", "remote", nc.RemoteAddr().String(), "reason", CloseTLSHandshakeTimeout.String())
			} else {
				s.closes[CloseProxyProtocol].Add(1)
				s.log.Warn("closing connection: "+err.Error(), "remote", nc.RemoteAddr().String())
			}
			nc.Close()
			return
		}
	}
	tc := tls.Server(tr, t.cfg)
	err := tc.Handshake()
	tr.giveCPU()
	t.mu.Lock()
	delete(t.pending, nc)
	t.mu.Unlock()
	if err != nil {
		reason := CloseTLSHandshake
		var ne net.Error
		var re tls.RecordHeaderError
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			reason = CloseTLSHandshakeTimeout
		case errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader):
			// As net/http answers it.
			_, _ = io.WriteString(nc, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		s.closes[reason].Add(1)
		s.log.Debug("connection closed", "remote", nc.RemoteAddr().String(), "reason", reason.String(), "detail", err.Error())
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == "h2" {
		if g := s.gen.Load(); s.admitH2(g) {
			ctx := s.baseCtx
			if base != nil {
				ctx = base.ctx
			}
			go s.h2.serve(nc, tc, nil, false, g, remote, ctx, false)
		} else {
			s.closes[CloseOverload].Add(1)
			s.log.Debug("connection closed", "remote", nc.RemoteAddr().String(), "reason", CloseOverload.String(),
				"detail", "HTTP/2 connection over connection_limit")
			nc.Close()
		}
		return
	}
	res, err := s.register(nc, &tlsOpening{base: base, tc: tc, tr: tr, state: &st, remote: remote})
	if err != nil {
		nc.Close()
		if !s.draining.Load() {
			s.log.Warn("cannot hand an accepted connection to the event loops", "err", err)
		}
		return
	}
	if r := <-res; r.Err != nil {
		s.log.Warn("cannot hand an accepted connection to the event loops", "err", r.Err)
	}
}

// looksLikeHTTP reports whether a record header that is not TLS is the
// start of an HTTP request (net/http's tlsRecordHeaderLooksLikeHTTP).
func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsOpening is what a TLS connection's handshake hands OnOpen with it
// (through gnet's Register), in place of the bare listenerBase.
type tlsOpening struct {
	base   *listenerBase
	tc     *tls.Conn
	tr     *tlsTransport
	state  *tls.ConnectionState
	remote net.Addr // the client its PROXY protocol header named, if any
}

// errNoInput is the transport's answer when the loop has no more
// ciphertext: temporary, so crypto/tls keeps what it has and tries again
// at the next Read.
var errNoInput net.Error = noInput{}

type noInput struct{}

func (noInput) Error() string   { return "waitron: no more input for now" }
func (noInput) Timeout() bool   { return true }
func (noInput) Temporary() bool { return true }

// tlsTransport is the net.Conn under a connection's tls.Conn: the socket
// during the handshake and after a hijack (nc), the event loop's buffers
// in between (gc).
type tlsTransport struct {
	gc       gnet.Conn // on the loop: ciphertext is read from gnet's inbound buffer (loop only)
	nc       net.Conn  // the socket on Go's poller, when gc is nil
	pre      []byte    // after a hijack: ciphertext gnet had read, read before nc's
	srv      *tlsServer
	deadline time.Time // of the handshake
	cpu      bool      // holds one of srv.cpu (the handshake's goroutine only)

	mu  sync.Mutex // out: written by tls.Conn (under its output lock), taken under the seal lock
	out [][]byte   // ciphertext written while on the loop, not yet taken into the output queue
}

func (tr *tlsTransport) Read(b []byte) (int, error) {
	if tr.gc != nil {
		n, _ := tr.gc.Read(b)
		if n == 0 {
			return 0, errNoInput
		}
		return n, nil
	}
	if len(tr.pre) > 0 {
		n := copy(b, tr.pre)
		tr.pre = tr.pre[n:]
		return n, nil
	}
	return tr.nc.Read(b)
}

// Write keeps ciphertext for the output queue while on the loop (take),
// and writes it to the socket otherwise. crypto/tls calls it with its
// output lock held, so what it keeps is in record order.
func (tr *tlsTransport) Write(b []byte) (int, error) {
	if tr.gc == nil {
		tr.giveCPU() // the handshake's flight: its public-key step is over
		return tr.nc.Write(b)
	}
	tr.mu.Lock()
	for rest := b; len(rest) > 0; {
		var last []byte
		if n := len(tr.out); n > 0 {
			last = tr.out[n-1]
		}
		if last == nil || len(last) == cap(last) {
			if len(rest) <= bufpool.SmallSize {
				last = bufpool.GetSmall()
			} else {
				last = bufpool.Get()
			}
			tr.out = append(tr.out, last)
		}
		k := min(len(rest), cap(last)-len(last))
		last = append(last, rest[:k]...)
		tr.out[len(tr.out)-1] = last
		rest = rest[k:]
	}
	tr.mu.Unlock()
	return len(b), nil
}

// take returns the ciphertext kept by Write, which the caller owns.
func (tr *tlsTransport) take() [][]byte {
	tr.mu.Lock()
	out := tr.out
	tr.out = nil
	tr.mu.Unlock()
	return out
}

// takeCPU waits for one of the server's public-key slots, until the
// handshake's deadline. The handshake's goroutine.
func (tr *tlsTransport) takeCPU() error {
	if tr.cpu || tr.srv == nil {
		return nil
	}
	tm := time.NewTimer(time.Until(tr.deadline))
	defer tm.Stop()
	select {
	case tr.srv.cpu <- struct{}{}:
		tr.cpu = true
		return nil
	case <-tm.C:
		return os.ErrDeadlineExceeded
	case <-tr.srv.stopped:
		return net.ErrClosed
	}
}

func (tr *tlsTransport) giveCPU() {
	if tr.cpu {
		tr.cpu = false
		<-tr.srv.cpu
	}
}

func (tr *tlsTransport) Close() error {
	if tr.nc != nil {
		return tr.nc.Close()
	}
	return nil
}
func (tr *tlsTransport) LocalAddr() net.Addr {
	if tr.nc != nil {
		return tr.nc.LocalAddr()
	}
	return tr.gc.LocalAddr()
}
func (tr *tlsTransport) RemoteAddr() net.Addr {
	if tr.nc != nil {
		return tr.nc.RemoteAddr()
	}
	return tr.gc.RemoteAddr()
}
func (tr *tlsTransport) SetDeadline(t time.Time) error {
	if tr.gc == nil && tr.nc != nil {
		return tr.nc.SetDeadline(t)
	}
	return nil
}
func (tr *tlsTransport) SetReadDeadline(t time.Time) error {
	if tr.gc == nil && tr.nc != nil {
		return tr.nc.SetReadDeadline(t)
	}
	return nil
}
func (tr *tlsTransport) SetWriteDeadline(t time.Time) error {
	if tr.gc == nil && tr.nc != nil {
		return tr.nc.SetWriteDeadline(t)
	}
	return nil
}

// tlsConn is a TLS connection's record layer once on its loop: the
// tls.Conn, the plaintext it decrypted and the codec has not consumed yet,
// and the seal lock.
type tlsConn struct {
	tc    *tls.Conn
	tr    *tlsTransport
	state *tls.ConnectionState // r.TLS of every request on the connection

	// seal orders encryption with the queue: held from a piece's
	// encryption until it is routed, so that no record overtakes one
	// encrypted before it.
	seal sync.Mutex

	pt  []byte // decrypted: pt[off:] is not consumed yet (loop only)
	off int
	err error // the record layer failed (io.EOF: the client's close_notify); loop only
}

// tlsFill decrypts what the loop has read, until limit bytes of plaintext
// wait or no more can be decrypted now; answers crypto/tls wrote meanwhile
// (a KeyUpdate's, an alert) go out in order. Loop only.
func (c *conn) tlsFill(limit int) {
	t := c.w.tls
	for t.err == nil && len(t.pt)-t.off < limit {
		if t.off == len(t.pt) && t.off > 0 {
			t.pt, t.off = t.pt[:0], 0
		}
		if cap(t.pt)-len(t.pt) < 16<<10 { // room for a whole record's plaintext
			if t.pt == nil {
				t.pt = bufpool.Get()
			} else {
				nb := make([]byte, len(t.pt)-t.off, max(2*cap(t.pt), bufpool.Size))
				copy(nb, t.pt[t.off:])
				bufpool.Put(t.pt)
				t.pt, t.off = nb, 0
			}
		}
		n, err := t.tc.Read(t.pt[len(t.pt):cap(t.pt)])
		t.pt = t.pt[:len(t.pt)+n]
		if err != nil {
			// The transport's "no more for now" comes back as it was
			// returned (the common end of a fill: a look before
			// errors.As, which costs a reflective walk).
			if err != errNoInput {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Temporary() { //nolint:staticcheck // crypto/tls's own test
					t.err = err
				}
			}
			break
		}
		if n == 0 {
			break
		}
	}
	if len(t.pt) == t.off && t.pt != nil {
		bufpool.Put(t.pt) // an idle connection holds no plaintext buffer
		t.pt, t.off = nil, 0
	}
	c.tlsFlush()
}

// pending returns the plaintext not consumed yet. Loop only.
func (t *tlsConn) pending() []byte { return t.pt[t.off:] }

// consume drops n bytes of plaintext. Loop only.
func (t *tlsConn) consume(n int) {
	t.off += n
	if t.off == len(t.pt) {
		bufpool.Put(t.pt)
		t.pt, t.off = nil, 0
	}
}

// tlsFlush routes what crypto/tls wrote on its own (while the loop read)
// into the queue, if it wrote anything: most reads write nothing, and the
// seal lock may be held by a worker's write. Loop only.
func (c *conn) tlsFlush() {
	t := c.w.tls
	t.tr.mu.Lock()
	none := len(t.tr.out) == 0
	t.tr.mu.Unlock()
	if !none {
		c.tlsSeal(func(*tls.Conn) {})
	}
}

// tlsWrite encrypts b, an answer of the loop's own, and routes it. Loop
// only.
func (c *conn) tlsWrite(b []byte) { c.tlsSeal(func(tc *tls.Conn) { _, _ = tc.Write(b) }) }

// tlsSeal runs write, which gives crypto/tls something to encrypt, under
// the seal lock, and routes the records crypto/tls has written since the
// last were taken (its own among them), in order. Loop only.
func (c *conn) tlsSeal(write func(tc *tls.Conn)) {
	t := c.w.tls
	t.seal.Lock()
	write(t.tc)
	for _, b := range t.tr.take() {
		c.writeRaw(b, true)
	}
	t.seal.Unlock()
}

// sealed returns bufs encrypted (releasing them), the caller holding the
// seal lock. Worker only.
func (t *tlsConn) sealed(bufs [][]byte) [][]byte {
	for _, b := range bufs {
		_, _ = t.tc.Write(b)
	}
	release(bufs)
	return t.tr.take()
}

// tlsFailed closes a connection whose record layer failed, once the
// plaintext before the failure is consumed: the client's close_notify
// closes it as a half-close would (after the response in flight), and
// anything else (a bad record, an alert, a renegotiation attempt) at
// once. Loop only.
func (c *conn) tlsFailed() {
	err := c.w.tls.err
	switch {
	case err == io.EOF:
		// The client has closed its side, most often the whole
		// connection: closed once the response in flight has left (the
		// next look at the input comes here again), without a
		// close_notify in reply, which would meet a reset.
		c.peerCloses = true
		if !c.st.busy {
			c.close(CloseTLSCloseNotify, "")
		}
	case strings.Contains(err.Error(), "unexpected handshake message") || strings.Contains(err.Error(), "renegotiation"):
		// crypto/tls's words for a handshake message after the handshake
		// (a ClientHello: a renegotiation attempt), which it refuses.
		c.close(CloseTLSRenegotiation, err.Error())
	default:
		c.close(CloseTLSError, err.Error())
	}
}

// tlsCloseNotify sends close_notify ahead of a close that lets the output
// drain. Loop only.
func (c *conn) tlsCloseNotify() { c.tlsSeal(func(tc *tls.Conn) { _ = tc.CloseWrite() }) }

// tlsDetach switches the transport of a connection being hijacked to its
// socket nc, with the ciphertext gnet had read first, and returns the
// plaintext already decrypted. Loop only.
func (c *conn) tlsDetach(nc net.Conn) []byte {
	t := c.w.tls
	if in, _ := c.gc.Peek(-1); len(in) > 0 {
		t.tr.pre = bytes.Clone(in)
	}
	pt := bytes.Clone(t.pending())
	t.tr.gc, t.tr.nc = nil, nc
	return pt
}

// tlsSave decrypts what gnet still holds of a client that half-closed,
// for the requests still to be read. Loop only.
func (c *conn) tlsSave() []byte {
	c.tlsFill(c.e.cfg.pipelineLimit + bodyPeek)
	return append([]byte(nil), c.w.tls.pending()...)
}
