//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlbatch_test

import "time"

// cpuTime is 0 where getrusage is not at hand: cpu-ms/op then reads 0.
func cpuTime() time.Duration { return 0 }
