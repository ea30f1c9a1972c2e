package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// SelfCPU returns the user and system CPU time of this process so far
// (getrusage RUSAGE_SELF), 0 if unavailable.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PostgresCPU returns the CPU time that the processes named postgres on
// this machine have used so far, as /proc shows it: the user and system
// time of each, plus the time of the children each has reaped (the
// postmaster reaps the backends, so a connection's backend that exited
// still counts). The difference of two readings is PostgreSQL's CPU
// between them, every database's, in steps of 10 ms per process. ok is
// false when /proc shows no postgres process (a server elsewhere, or
// another operating system).
func PostgresCPU() (d time.Duration, ok bool) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open || s[open+1:closing] != "postgres" {
			continue
		}
		// After the command: state (field 3) … utime (14), stime (15),
		// cutime (16), cstime (17).
		f := strings.Fields(s[closing+1:])
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				ticks += n
			}
		}
		ok = true
	}
	return time.Duration(ticks) * clockTick, ok
}

// MachineCPU returns the CPU time all CPUs of the machine have spent busy
// (everything but idle and I/O wait) and idle so far, from /proc/stat.
// ok is false when /proc/stat is unreadable.
func MachineCPU() (busy, idle time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice,
	// already counted in user and nice]
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		d := time.Duration(n) * clockTick
		if i == 3 || i == 4 {
			idle += d
		} else {
			busy += d
		}
	}
	return busy, idle, true
}
