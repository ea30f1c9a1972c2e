package crashtest

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/batchenrich/batchenrich"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child process: it runs TestHelperProcess only, which exits
		// by itself; no leak check there.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait for a child: a hang guard, not a timing
// assertion.
const waitLimit = 45 * time.Second

// lines collects a stream's lines and wakes waiters on each.
type lines struct {
	mu      sync.Mutex
	partial string
	all     []string
	notify  chan struct{} // closed and replaced on each new line
}

func newLines() *lines { return &lines{notify: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.partial + string(p)
	parts := strings.Split(s, "\n")
	l.partial = parts[len(parts)-1]
	if len(parts) > 1 {
		l.all = append(l.all, parts[:len(parts)-1]...)
		close(l.notify)
		l.notify = make(chan struct{})
	}
	return len(p), nil
}

// find returns the first line with prefix, and a channel closed when more
// lines arrive.
func (l *lines) find(prefix string) (string, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if strings.HasPrefix(s, prefix) {
			return s, true, l.notify
		}
	}
	return "", false, l.notify
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n") + l.partial
}

// proc is a running child process.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lines
	stderr *lines
	done   chan struct{} // closed when the process has exited
	code   int           // exit code, -1 if killed by a signal
}

// startChild starts the test binary as a child running cfg. It is killed
// when the test ends, if still running.
func startChild(t *testing.T, name string, cfg childConfig) *proc {
	t.Helper()
	spec, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, stdout: newLines(), stderr: newLines(), done: make(chan struct{})}
	p.cmd = exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=2m")
	p.cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code == 0 {
			p.code = -2 // I/O error after a clean exit
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr (tail):\n%s", name, p.stdout, name, tail(p.stderr.String(), 3000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// waitLine waits for a stdout line starting with prefix and returns it.
// It fails the test if the child exits first or the wait is too long.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		s, ok, more := p.stdout.find(prefix)
		if ok {
			return s
		}
		select {
		case <-more:
		case <-p.done:
			if s, ok, _ := p.stdout.find(prefix); ok {
				return s
			}
			p.t.Fatalf("%s exited with %d before printing %q", p.name, p.code, prefix)
		case <-timer.C:
			p.t.Fatalf("%s: no %q after %s", p.name, prefix, waitLimit)
		}
	}
}

// waitStderr waits for a stderr line containing s.
func (p *proc) waitStderr(s string) {
	p.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		p.stderr.mu.Lock()
		found := strings.Contains(strings.Join(p.stderr.all, "\n"), s)
		more := p.stderr.notify
		p.stderr.mu.Unlock()
		if found {
			return
		}
		select {
		case <-more:
		case <-p.done:
			p.t.Fatalf("%s exited with %d before logging %q", p.name, p.code, s)
		case <-timer.C:
			p.t.Fatalf("%s: no %q logged after %s", p.name, s, waitLimit)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatal(err)
	}
	p.wait()
	if p.code != -1 {
		p.t.Fatalf("%s: exit code %d after SIGKILL, want -1 (killed)", p.name, p.code)
	}
}

// resume ends the child's pause.
func (p *proc) resume() {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the child to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(waitLimit):
		p.t.Fatalf("%s still running after %s", p.name, waitLimit)
		return 0
	}
}

// finish waits for the child to exit with code and returns its Report.
func (p *proc) finish(code int) batchenrich.Report {
	p.t.Helper()
	if got := p.wait(); got != code {
		p.t.Fatalf("%s exited with %d, want %d", p.name, got, code)
	}
	line := p.waitLine("report ")
	var rep batchenrich.Report
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "report ")), &rep); err != nil {
		p.t.Fatalf("%s: report: %v", p.name, err)
	}
	return rep
}
