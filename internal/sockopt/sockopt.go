// Package sockopt holds the socket options waitron's listeners share.
package sockopt

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// ReusePort is a net.ListenConfig Control that sets SO_REUSEPORT, so that
// other processes bound the same way share the port (reuse_port).
func ReusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
