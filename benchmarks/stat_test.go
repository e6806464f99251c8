package main

import "testing"

// TestParseCPUStat reads one CPU's line of /proc/stat: idle and iowait
// are idle, the rest of the first eight fields busy, and a CPU whose
// number is a prefix of another's (cpu1, cpu10) is not mistaken for it.
func TestParseCPUStat(t *testing.T) {
	stat := []byte("cpu  40 0 20 300 5 1 2 0 0 0\n" +
		"cpu0 10 0 5 100 1 0 1 0 0 0\n" +
		"cpu10 99 99 99 99 99 99 99 99 0 0\n" +
		"cpu1 30 1 15 200 4 1 1 2 7 0\n" +
		"intr 12345\n")
	for _, c := range []struct {
		cpu         int
		busy, total uint64
	}{
		{0, 16, 117},
		{1, 50, 254},
		{10, 594, 792},
		{2, 0, 0},
	} {
		busy, total := parseCPUStat(stat, c.cpu)
		if busy != c.busy || total != c.total {
			t.Errorf("cpu%d: busy %d of %d, want %d of %d", c.cpu, busy, total, c.busy, c.total)
		}
	}
	if busy, total := parseCPUStat([]byte("cpu1 1 2 3\n"), 1); busy != 0 || total != 0 {
		t.Errorf("short line: busy %d of %d, want 0 of 0", busy, total)
	}
}
