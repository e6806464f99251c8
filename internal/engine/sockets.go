package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/waitron/waitron/internal/sockopt"
)

// Listening. gnet stops its whole engine, closing every connection, when
// accept fails (EMFILE, ENFILE, ENOBUFS), and it cannot adopt a listening
// descriptor; so waitron binds every listener itself (or is given them:
// the sockets option), accepts on them in Go and registers each
// connection with gnet, which serves it from then on like any other. gnet
// listens only on a private placeholder. An accept that fails for want of
// resources pauses that listener, backing off, and never touches an open
// connection.

// systemdListeners returns the listeners passed by systemd socket
// activation (LISTEN_PID, LISTEN_FDS; descriptors from 3), and unsets
// those variables so child processes do not inherit them.
func systemdListeners() ([]net.Listener, error) {
	pid, err1 := strconv.Atoi(os.Getenv("LISTEN_PID"))
	n, err2 := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err1 != nil || err2 != nil || n < 1 {
		return nil, errors.New("sockets=systemd: LISTEN_PID and LISTEN_FDS are not set (not started by systemd socket activation)")
	}
	if pid != os.Getpid() {
		return nil, fmt.Errorf("sockets=systemd: LISTEN_PID is %d, not this process (%d)", pid, os.Getpid())
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	var lns []net.Listener
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "systemd-socket-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("sockets=systemd: descriptor %d: %w", fd, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// checkSockets applies waitress's rule: all Internet or all UNIX stream
// sockets.
func checkSockets(lns []net.Listener) error {
	inet, unixs := false, false
	for _, ln := range lns {
		switch ln.Addr().Network() {
		case "tcp", "tcp4", "tcp6":
			inet = true
		case "unix":
			unixs = true
		default:
			return errors.New("Only Internet or UNIX stream sockets may be used.")
		}
	}
	if inet && unixs {
		return errors.New("Internet and UNIX sockets may not be mixed.")
	}
	return nil
}

// placeholderURL makes the private unix listener gnet needs to run (and to
// accept Register calls) when every real listener comes from sockets. Its
// file is removed as soon as gnet has bound it, so nobody can connect.
func placeholderURL() (string, string, error) {
	dir, err := os.MkdirTemp("", "waitron-placeholder-")
	if err != nil {
		return "", "", err
	}
	p := filepath.Join(dir, "unused.sock")
	return "unix://" + p, dir, nil
}

// acceptLoop accepts on ln until it is closed and registers every
// connection with gnet. It holds one spare descriptor, given up for the
// moment gnet duplicates the accepted one (see spareFD), so that taking
// the last descriptor the process may open never costs an accepted
// connection. When accept fails (EMFILE, ENFILE, ENOBUFS …), or no
// descriptor is left to spare, it pauses with a back-off that starts
// again once accepting succeeds; the connections waiting meanwhile stay
// in the listen queue. On a TLS listener (secure) each connection's
// handshake runs on a goroutine of its own, which registers it once done;
// while tls_handshake_limit of them run, the loop waits before accepting.
func (s *Server) acceptLoop(ln net.Listener, secure bool) {
	base := s.listenerBaseOf(ln)
	var p acceptPause
	var spare spareFD
	defer spare.close()
	for {
		if err := spare.hold(); err != nil {
			if s.draining.Load() {
				return
			}
			p.fail(s, ln, err)
			continue
		}
		if secure && !s.tls.slot() {
			return // stopped
		}
		c, err := ln.Accept()
		if err != nil {
			if secure {
				<-s.tls.slots
			}
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			p.fail(s, ln, err)
			continue
		}
		p.succeeded()
		if secure {
			go s.handshake(c, base)
			continue
		}
		spare.give() // for gnet's duplicate of c's descriptor
		res, err := s.register(c, baseOf(base))
		if err != nil {
			c.Close()
			if !s.draining.Load() {
				s.log.Warn("cannot hand an accepted connection to the event loops", "err", err)
			}
			continue
		}
		// gnet duplicates the descriptor and closes c itself once the
		// connection is registered; wait so accepts cannot outrun it.
		if r := <-res; r.Err != nil {
			s.log.Warn("cannot hand an accepted connection to the event loops", "err", r.Err)
		}
	}
}

// baseOf returns b as register's context: nil (an any holding no pointer)
// when b is nil.
func baseOf(b *listenerBase) any {
	if b == nil {
		return nil
	}
	return b
}

// spareFD keeps one descriptor slot of the process's limit in reserve: a
// duplicate of a descriptor it keeps open (an eventfd), so that giving the
// slot up and taking it again are a close and a dup, neither of which
// frees or makes a file.
type spareFD struct {
	base  int  // the eventfd kept open, once made
	spare int  // base's duplicate while the slot is held; -1 while given up
	made  bool // base exists (a descriptor may be 0, so no number says so)
}

// hold takes the spare slot if it is not held.
func (f *spareFD) hold() error {
	if !f.made {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			return err
		}
		f.base, f.spare, f.made = fd, -1, true
	}
	if f.spare >= 0 {
		return nil
	}
	fd, err := unix.FcntlInt(uintptr(f.base), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f.spare = fd
	return nil
}

// give frees the spare slot.
func (f *spareFD) give() {
	if f.made && f.spare >= 0 {
		unix.Close(f.spare)
		f.spare = -1
	}
}

func (f *spareFD) close() {
	if f.made {
		f.give()
		unix.Close(f.base)
	}
}

// register hands c to the current run of the event loops. While they
// restart (gnet stopped on its own), it waits for the next run rather than
// lose the connection; it fails once Serve has returned, or gnet refuses c.
func (s *Server) register(c net.Conn, base any) (<-chan gnet.RegisteredResult, error) {
	ctx := gnet.NewNetConnContext(context.Background(), c)
	if base != nil {
		ctx = gnet.NewContext(ctx, base) // OnOpen finds it as the connection's first context (listenerBase, tlsOpening)
	}
	for {
		r := s.run.Load()
		res, err := r.eng.Register(ctx)
		if err == nil || s.draining.Load() {
			return res, err
		}
		<-r.next // the run is over: wait for the next
		if s.run.Load() == r {
			return nil, err // none comes: Serve has returned
		}
	}
}

// acceptPause is an accept loop's back-off after failures: it doubles
// from acceptPauseMin to acceptPauseMax and starts again at the first
// accept that succeeds. Every failure is counted (AcceptErrors); the log
// has a line at the first and then at most one per acceptLogEvery, with
// the failures since the last.
type acceptPause struct {
	delay    time.Duration
	unlogged int
	logged   time.Time
}

const (
	acceptPauseMin = 5 * time.Millisecond
	acceptPauseMax = time.Second
	acceptLogEvery = 10 * time.Second
)

// fail counts err, logs it if it is time, then sleeps.
func (p *acceptPause) fail(s *Server, ln net.Listener, err error) {
	s.counts.acceptErrors.Add(1)
	p.unlogged++
	if now := time.Now(); now.Sub(p.logged) >= acceptLogEvery {
		s.log.Error("accept failed; pausing this listener until it succeeds (open connections are kept)",
			"addr", ln.Addr().String(), "err", err, "failures", p.unlogged)
		p.logged, p.unlogged = now, 0
	}
	p.delay = min(max(2*p.delay, acceptPauseMin), acceptPauseMax)
	time.Sleep(p.delay)
}

// succeeded ends a run of failures: the next pause is short again.
func (p *acceptPause) succeeded() { p.delay = 0 }

// bindListeners binds the gnet-style URLs (tcp4://ip:port, tcp6://[ip]:port,
// unix:///path) in Go: with SO_REUSEPORT as well under reuse_port, and a
// unix socket with unix_socket_perms (set before it is announced). IPv6
// listeners are v6-only, as Go makes "tcp6" ones. Accepted connections get
// no TCP keep-alive, as gnet's own did not.
func (s *Server) bindListeners(urls []string) ([]net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	if s.opts.ReusePort {
		lc.Control = sockopt.ReusePort
	}
	var lns []net.Listener
	fail := func(raw string, err error) ([]net.Listener, error) {
		for _, l := range lns {
			l.Close()
		}
		if s.opts.ReusePort {
			return nil, fmt.Errorf("waitron: reuse_port: %s: %w", raw, err)
		}
		return nil, fmt.Errorf("waitron: listen %s: %w", raw, err)
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return fail(raw, err)
		}
		var ln net.Listener
		if u.Scheme == "unix" {
			ln, err = s.bindUnix(lc, u.Path)
		} else {
			ln, err = lc.Listen(context.Background(), u.Scheme, u.Host)
		}
		if err != nil {
			return fail(raw, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// bindUnix binds the unix socket at path, replacing a socket left there
// (newServer refused a path holding anything else), and applies
// unix_socket_perms. Closing the listener removes the file.
func (s *Server) bindUnix(lc net.ListenConfig, path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("unix_socket %q exists and is not a socket; refusing to replace it", path)
		}
		os.Remove(path)
	}
	ln, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, s.opts.UnixSocketPerms); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot apply unix_socket_perms: %w", err)
	}
	return ln, nil
}

// startSockets applies backlog to the listeners, announces them and
// starts accepting. Called once the engine runs.
func (s *Server) startSockets() {
	for _, ln := range s.sockets {
		if sc, ok := ln.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) {
					if err := unix.Listen(int(fd), s.opts.Backlog); err != nil {
						s.log.Error("cannot apply backlog", "addr", ln.Addr().String(), "err", err)
					}
				})
			}
		}
		s.addrs = append(s.addrs, ln.Addr())
		switch {
		case ln.Addr().Network() == "unix":
			s.log.Info("Serving on unix:" + ln.Addr().String())
		case s.tlsLns[ln]:
			s.log.Info("Serving on https://" + ln.Addr().String())
		default:
			s.log.Info("Serving on http://" + ln.Addr().String())
		}
		go s.acceptLoop(ln, s.tlsLns[ln])
	}
}

// loopCount is the number of event loops: event_loops, or GOMAXPROCS.
func (s *Server) loopCount() int {
	if s.opts.EventLoops > 0 {
		return s.opts.EventLoops
	}
	return runtime.GOMAXPROCS(0)
}
