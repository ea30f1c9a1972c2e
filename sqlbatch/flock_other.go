//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlbatch

// lockFile is unused where flock(2) is missing: runs are locked by their
// lease alone.
type lockFile struct{}

func flockPath(string) (*lockFile, fileState, error) { return nil, fileNone, nil }

func (l *lockFile) release(bool) {}
