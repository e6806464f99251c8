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
)

// The sockets option: listeners made elsewhere (given from Go, or
// inherited through systemd socket activation). gnet cannot adopt a
// listening descriptor, so waitron accepts on them in Go and registers
// each connection with gnet; from then on it is served like any other.

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
// connection with gnet. Temporary errors (EMFILE among them) back off
// instead of spinning.
func (s *Server) acceptLoop(ln net.Listener) {
	delay := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed on an inherited socket; retrying", "addr", ln.Addr().String(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		res, err := s.eng.Register(gnet.NewNetConnContext(context.Background(), c))
		if err != nil {
			c.Close()
			s.log.Warn("cannot hand an accepted connection to the event loops", "err", err)
			continue
		}
		// gnet duplicates the descriptor and closes c itself once the
		// connection is registered; wait so accepts cannot outrun it.
		if r := <-res; r.Err != nil {
			s.log.Warn("cannot hand an accepted connection to the event loops", "err", r.Err)
		}
	}
}

// startSockets applies backlog to the adopted listeners, announces them
// and starts accepting. Called once the engine runs.
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
		if ln.Addr().Network() == "unix" {
			s.log.Info("Serving on unix:" + ln.Addr().String())
		} else {
			s.log.Info("Serving on http://" + ln.Addr().String())
		}
		go s.acceptLoop(ln)
	}
}

// listenReusePort binds each gnet URL (tcp4://ip:port, tcp6://[ip]:port)
// with SO_REUSEADDR and SO_REUSEPORT, so other processes bound the same way
// share the port (reuse_port). gnet's own ReusePort mode is not used: it
// rebinds one listener per loop from the address alone, which picks a
// different port per loop for port 0 and mixes address families
// (reference/gnet-notes.md).
func listenReusePort(urls []string) ([]net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	var lns []net.Listener
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err == nil {
			var ln net.Listener
			if ln, err = lc.Listen(context.Background(), u.Scheme, u.Host); err == nil {
				lns = append(lns, ln)
				continue
			}
		}
		for _, l := range lns {
			l.Close()
		}
		return nil, fmt.Errorf("waitron: reuse_port: %s: %w", raw, err)
	}
	return lns, nil
}

// loopCount is the number of event loops: event_loops, or GOMAXPROCS.
func (s *Server) loopCount() int {
	if s.opts.EventLoops > 0 {
		return s.opts.EventLoops
	}
	return runtime.GOMAXPROCS(0)
}
