package admitapi

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestAdmitsKThenRefuses(t *testing.T) {
	s := New(2, 50*time.Millisecond)
	srv := httptest.NewServer(s)
	defer srv.Close()
	var wg sync.WaitGroup
	codes := make(chan int, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	ok, over, _ := s.Counts()
	if n[200] < 1 || n[200]+n[429] != 6 || int(ok) != n[200] || int(over) != n[429] {
		t.Fatalf("statuses %v, counts ok %d 429 %d", n, ok, over)
	}
	if n[200] > 6 {
		t.Fatal("impossible")
	}

	s.Outage(time.Hour, 2)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || len(s.OutageHits()) != 1 {
		t.Fatalf("outage: %d %q hits %d", resp.StatusCode, resp.Header.Get("Retry-After"), len(s.OutageHits()))
	}
}
