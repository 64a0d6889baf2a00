package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// rateLimiter is a token bucket per client address, in memory. It protects
// the public verification page from code guessing: with 160-bit codes a
// guess cannot succeed anyway, but an unbounded rate of guesses is load for
// nothing and noise in the logs.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter allows perMinute requests a minute per client, with bursts
// of burst.
func newRateLimiter(perMinute, burst int) *rateLimiter {
	return &rateLimiter{rate: float64(perMinute) / 60, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long to wait for one.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Forget full buckets now and then, so the map stays small.
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// limit answers 429 rate_limited with Retry-After to a client over its rate.
func (l *rateLimiter) limit(trustedProxies []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "?"
		if ip := clientIP(r, trustedProxies); ip.IsValid() {
			key = ip.String()
		}
		if ok, wait := l.allow(key); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeProblem(w, problem(codeRateLimited, "trop de requêtes : réessayez plus tard", nil))
			return
		}
		next.ServeHTTP(w, r)
	})
}
