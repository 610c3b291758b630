package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// TestNotifyLimitBucket: the bucket lets a burst through, then the rate,
// and reports drops at most once per notifyLogEvery.
func TestNotifyLimitBucket(t *testing.T) {
	l := newNotifyLimit(10) // burst 20
	now := time.Unix(1000, 0)
	passed := 0
	var reported int64
	for range 100 {
		ok, rep := l.allow(now)
		if ok {
			passed++
		}
		reported += rep
	}
	if passed != 20 || l.total != 80 || reported != 1 {
		t.Fatalf("at one instant: passed %d, dropped %d, reported %d", passed, l.total, reported)
	}
	// One second later, ten more tokens.
	now = now.Add(time.Second)
	passed = 0
	for range 100 {
		if ok, _ := l.allow(now); ok {
			passed++
		}
	}
	if passed != 10 {
		t.Fatalf("a second later: passed %d, want 10", passed)
	}
	// The next report, notifyLogEvery after the first, has every drop
	// since then.
	now = now.Add(notifyLogEvery)
	reported = 0
	for range 30 { // 20 pass (the bucket refilled), 10 dropped
		_, rep := l.allow(now)
		reported += rep
	}
	// The first drop now reports the 79 not reported at the first
	// instant, the 90 of the second, and itself.
	if reported != 79+90+1 {
		t.Fatalf("report after notifyLogEvery: %d dropped, want 170", reported)
	}
	if ok, _ := newNotifyLimit(-1).allow(now); !ok {
		t.Fatal("a negative rate bounds nothing")
	}
}

// TestUpstreamNotificationFlood: an upstream that floods log messages
// during a call has the excess dropped and counted; the call completes
// and the client gets at most the burst plus the rate.
func TestUpstreamNotificationFlood(t *testing.T) {
	const sent = 2000
	s := mcp.NewServer(&mcp.Implementation{Name: "flood", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "flood", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		for i := range sent {
			req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: jsontext.Value(`"line"`), Logger: string(rune('a' + i%26))})
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil
	})
	url, _ := httpUpstreamServer(t, s)
	g, gw := startGateway(t, &config.Config{Server: &config.Server{UpstreamNotificationRate: 10}, Upstreams: []config.Upstream{{Name: "f", URL: url + "/mcp"}}})
	var received atomic.Int64
	cs := connect(t, gw, &mcp.ClientOptions{LoggingMessageHandler: func(context.Context, *mcp.ClientSession, *mcp.LoggingMessageParams) {
		received.Add(1)
	}})
	start := time.Now()
	if got := callText(t, cs, "f_flood"); got != "done" {
		t.Fatalf("flood = %q", got)
	}
	elapsed := time.Since(start)
	dropped := g.Dropped("f")
	// Messages relayed may still be on their way to the client; the
	// bound on what passed holds regardless.
	bound := int64(20 + 10*elapsed.Seconds() + 10)
	t.Logf("sent %d, dropped %d, received %d so far, in %s (bound %d)", sent, dropped, received.Load(), elapsed, bound)
	if dropped == 0 || sent-dropped > bound {
		t.Fatalf("sent %d, dropped %d: more than %d passed", sent, dropped, bound)
	}
}
