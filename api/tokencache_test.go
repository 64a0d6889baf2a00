package api

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestTokenCache: a valid token is remembered until it expires, and the
// cache never holds more than tokenCacheMax tokens.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	c := &tokenCache{valid: map[[sha256.Size]byte]cachedToken{}}
	sum := sha256.Sum256([]byte("aptf_a"))
	if _, ok := c.get(sum); ok {
		t.Fatal("unknown token found")
	}
	c.put(sum, 7)
	if id, ok := c.get(sum); !ok || id != 7 {
		t.Fatalf("get = %d, %v; want 7, true", id, ok)
	}

	t.Run("Expired", func(t *testing.T) {
		c.mu.Lock()
		c.valid[sum] = cachedToken{id: 7, expires: time.Now().Add(-time.Second)}
		c.mu.Unlock()
		if _, ok := c.get(sum); ok {
			t.Fatal("expired token still valid: a revoked token would work forever")
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		for i := range tokenCacheMax + 10 {
			c.put(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), int64(i))
		}
		c.mu.Lock()
		n := len(c.valid)
		c.mu.Unlock()
		if n > tokenCacheMax {
			t.Fatalf("%d tokens cached, want at most %d", n, tokenCacheMax)
		}
	})
}
