package sqlbatch

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// Test hooks.

// SetAfterStatement makes s call f after each statement of a write.
func (s *Sink[T, R]) SetAfterStatement(f func(ctx context.Context, tx *sqlx.Tx) error) {
	s.afterStatement = f
}

// SetChunkRows caps the rows per statement.
func (s *Sink[T, R]) SetChunkRows(n int) { s.chunkRows = n }

// UseCopy makes s stage rows with COPY on PostgreSQL.
func (s *Sink[T, R]) UseCopy() { s.pg = pgCopy }

// UseValues makes s use multi-row VALUES on PostgreSQL.
func (s *Sink[T, R]) UseValues() { s.pg = pgValues }

// LockPID returns the backend pid holding the PostgreSQL lock on runKey.
func (s *CheckpointStore) LockPID(runKey string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[runKey]; h != nil {
		return h.pid
	}
	return 0
}
