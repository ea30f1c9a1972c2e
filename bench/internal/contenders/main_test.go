package contenders_test

import (
	"os"
	"testing"

	"github.com/batchenrich/batchenrich/bench/internal/contenders"
)

// TestMain lets the test binary serve as a riverenrich worker process for
// the riverenrich contender, which starts copies of its own executable.
func TestMain(m *testing.M) {
	if spec := os.Getenv(contenders.RiverWorkerEnv); spec != "" {
		os.Exit(contenders.RiverWorker(spec))
	}
	os.Exit(m.Run())
}
