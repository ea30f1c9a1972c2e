package riverenrich

import (
	"context"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/batchenrich/batchenrich"
)

// connDouble is a BulkEnricher holding connections of a pool, a
// batchenrich.ConnUser.
type connDouble struct{ bulkDouble }

func (connDouble) ConnUse(batchenrich.Options) []batchenrich.ConnUse {
	return []batchenrich.ConnUse{{Conns: 1, For: "a lookup's query"}}
}

type describedConnDouble struct{ connDouble }

func (describedConnDouble) Describe() string { return "lookup" }

// The Enricher Config.Concurrency wraps stays a batchenrich.ConnUser when
// it was one, so that the Runner counts its connections in the pool check
// as it would unwrapped (bulk or not, described or not).
func TestLimitedKeepsConnUse(t *testing.T) {
	sem := semaphore.NewWeighted(1)
	one := batchenrich.EnricherFunc[int, int](func(_ context.Context, n int) (int, error) { return n, nil })
	for name, enr := range map[string]batchenrich.Enricher[int, int]{
		"bulk":           &connDouble{},
		"described bulk": &describedConnDouble{},
		"one": struct {
			batchenrich.Enricher[int, int]
			batchenrich.ConnUser
		}{one, connDouble{}},
	} {
		wrapped := limited(sem, enr)
		cu, ok := wrapped.(batchenrich.ConnUser)
		if !ok {
			t.Errorf("%s: the wrapped Enricher is no ConnUser", name)
			continue
		}
		if uses := cu.ConnUse(batchenrich.Options{}); len(uses) != 1 || uses[0].For != "a lookup's query" {
			t.Errorf("%s: ConnUse = %+v, want the Enricher's", name, uses)
		}
	}
	// One that holds none says so.
	if cu, ok := limited(sem, one).(batchenrich.ConnUser); ok && cu.ConnUse(batchenrich.Options{}) != nil {
		t.Errorf("an Enricher holding no connection: ConnUse = %+v, want nil", cu.ConnUse(batchenrich.Options{}))
	}
}
