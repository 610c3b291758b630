package gateway

import (
	"sync"
	"time"
)

// notifyLimit bounds the rate of the notifications one upstream sends that
// may come in floods (progress, log messages, resource updates): a token
// bucket of rate per second holding at most burst. What is over the rate is
// dropped, not queued, and counted; the drops are logged at most once per
// notifyLogEvery per upstream, with the count since the last line.
type notifyLimit struct {
	rate  float64 // tokens per second; <= 0: no bound
	burst float64

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int64 // since the last log line
	total   int64 // since start
	logged  time.Time
}

// notifyLogEvery is the least interval between two log lines about
// dropped notifications of one upstream.
const notifyLogEvery = 10 * time.Second

func newNotifyLimit(rate int) *notifyLimit {
	return &notifyLimit{rate: float64(rate), burst: 2 * float64(rate), tokens: 2 * float64(rate)}
}

// allow takes a token at now. When it drops, report says how many were
// dropped since the last report if a log line is due (else 0).
func (l *notifyLimit) allow(now time.Time) (ok bool, report int64) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	l.dropped++
	l.total++
	if now.Sub(l.logged) >= notifyLogEvery {
		l.logged = now
		report, l.dropped = l.dropped, 0
	}
	return false, report
}

// Dropped returns how many notifications of upstream were dropped because
// the upstream sent them faster than server.upstream_notification_rate.
func (g *Gateway) Dropped(upstream string) int64 {
	u := g.upstreamNamed(upstream)
	if u == nil || u.notify == nil {
		return 0
	}
	u.notify.mu.Lock()
	defer u.notify.mu.Unlock()
	return u.notify.total
}

// admitNotification applies the upstream's notification rate to a
// notification that may come in floods; others always pass.
func (u *upstream) admitNotification(method string) bool {
	switch method {
	case "notifications/progress", "notifications/message", "notifications/resources/updated":
	default:
		return true
	}
	ok, report := u.notify.allow(time.Now())
	if report > 0 {
		u.logger.Warn("upstream sends notifications faster than server.upstream_notification_rate; dropping the excess",
			"method", method, "dropped", report, "rate_per_second", u.notify.rate)
	}
	return ok
}
