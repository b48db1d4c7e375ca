package intake

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterKeys bounds the keys a keyedLimiter remembers: beyond it, keys
// whose bucket has refilled are forgotten (they are indistinguishable from
// new ones), so a flood of addresses cannot grow memory without bound.
const maxLimiterKeys = 10000

// keyedLimiter is a token bucket per key (a client address, a source): perMinute
// tokens a minute, as many at once. It is safe for concurrent use.
type keyedLimiter struct {
	perMinute int
	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
}

func newKeyedLimiter(perMinute int) *keyedLimiter {
	return &keyedLimiter{perMinute: perMinute, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token of key at now. When none is left it returns false and
// how long until one is.
func (l *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimiterKeys {
			l.forgetFull(now)
		}
		b = rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), l.perMinute)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.TokensAt(now)) / float64(b.Limit()) * float64(time.Second)))
	return false, wait
}

// forgetFull drops the buckets that have refilled; if none has, it drops all
// (a flood of distinct keys: forgetting is the lesser evil than unbounded memory).
func (l *keyedLimiter) forgetFull(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.perMinute) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxLimiterKeys {
		clear(l.buckets)
	}
}
