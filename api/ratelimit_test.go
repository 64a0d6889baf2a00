package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := newRateLimiter(60, 3)
	l.now = func() time.Time { return now }
	h := l.limit(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/attestations/x", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := 0; i < 3; i++ {
		if w := do("192.0.2.1:1234"); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := do("192.0.2.1:1234")
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("over the burst: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do("192.0.2.2:1234"); w.Code != 200 {
		t.Fatalf("another client: %d", w.Code)
	}
	now = now.Add(time.Second) // one token back at 1/s
	if w := do("192.0.2.1:1234"); w.Code != 200 {
		t.Fatalf("after a second: %d", w.Code)
	}
	if w := do("192.0.2.1:1234"); w.Code != 429 {
		t.Fatalf("token spent: %d", w.Code)
	}
}
