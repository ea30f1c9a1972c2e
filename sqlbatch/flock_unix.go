//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlbatch

import (
	"errors"
	"os"
	"syscall"
)

// lockFile is an OS lock (flock) on a file, which the kernel frees when
// the process holding it dies.
type lockFile struct {
	f    *os.File
	path string
}

// flockPath takes an exclusive flock on the file at path, creating it.
// It returns fileBusy if another open file description (another process,
// or another store of this one) holds it, and fileNone if the file system
// cannot lock.
func flockPath(path string) (*lockFile, fileState, error) {
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fileNone, nil // a read-only directory: leases alone
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fileBusy, nil
			}
			return nil, fileNone, nil // no flock on this file system
		}
		// The holder before may have removed the file, as it does when
		// it unlocks, between our open and flock: then lock the new one.
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			return &lockFile{f: f, path: path}, fileLocked, nil
		}
		f.Close()
	}
	return nil, fileBusy, nil
}

// release frees the lock, removing the file first if remove is set. A nil
// lockFile does nothing.
func (l *lockFile) release(remove bool) {
	if l == nil {
		return
	}
	if remove {
		_ = os.Remove(l.path)
	}
	_ = l.f.Close()
}
