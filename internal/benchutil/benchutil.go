// Package benchutil has what the benchmark and soak commands share: waiting
// for a server to listen and reading a process's resident memory.
package benchutil

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// WaitListening waits up to 5 s for addr to accept a TCP connection.
func WaitListening(addr string) error {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after 5 s", addr)
}

// RSSKB returns the resident memory of process pid in KiB, or 0.
func RSSKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
