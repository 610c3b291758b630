package gateway

import (
	"context"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/mcp"
)

// Notifications of modern upstreams.
//
// A 2026-07-28 upstream has no session stream: it sends list changes only
// on subscriptions/listen streams. So every modern upstream session the
// gateway holds keeps one open (as a legacy session keeps its GET
// stream), opting in to the list changes the upstream's capabilities
// announce; what arrives goes through relayNotification like a legacy
// upstream's notifications (the principal's catalogue is rebuilt, then the
// principal's legacy sessions and modern listeners are told). The stream
// is opened again after a failure (back-off from listenRetryMin to
// listenRetryMax) and ends with the session. Resource updates are not
// subscribed to upstream (resources/subscribe does not exist there).

// Back-off of an upstream listen stream that failed.
const (
	listenRetryMin = time.Second
	listenRetryMax = 30 * time.Second
)

// listenFilter is what the gateway opts in to on a modern upstream's
// listen stream: the list changes its capabilities announce.
func listenFilter(caps mcp.ServerCapabilities) mcp.SubscriptionFilter {
	var f mcp.SubscriptionFilter
	f.ToolsListChanged = caps.Tools != nil && caps.Tools.ListChanged
	f.PromptsListChanged = caps.Prompts != nil && caps.Prompts.ListChanged
	f.ResourcesListChanged = caps.Resources != nil && caps.Resources.ListChanged
	return f
}

// listen keeps a subscriptions/listen stream open on the modern upstream
// session cs until the session ends or the gateway closes.
func (us *upstreamSession) listen(cs *mcp.ClientSession) {
	f := listenFilter(cs.InitializeResult().Capabilities)
	if !f.ToolsListChanged && !f.PromptsListChanged && !f.ResourcesListChanged {
		return
	}
	ctx, cancel := context.WithCancel(us.up.g.life)
	defer cancel()
	go func() {
		cs.Wait()
		cancel()
	}()
	wait := listenRetryMin
	for {
		start := time.Now()
		err := cs.Listen(ctx, f)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > listenRetryMax {
			wait = listenRetryMin // it lasted: start the back-off again
		}
		us.up.logger.Debug("upstream subscriptions/listen stream ended; opening it again", "principal", us.principal, "error", err, "retry_in", wait)
		t := time.NewTimer(jitter(wait))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// withoutSubscriptionID removes the upstream's subscription id from a
// notification's _meta: it names the gateway's stream, not the client's
// (modern listeners get their own, modern_listen.go).
func withoutSubscriptionID(params jsontext.Value) jsontext.Value {
	meta := valueOf(params, "_meta")
	if meta.Kind() != '{' {
		return params
	}
	m, err := jsonraw.Parse(meta)
	if err != nil {
		return params
	}
	if _, ok := m.Get(mcp.MetaSubscriptionID); !ok {
		return params
	}
	m.Delete(mcp.MetaSubscriptionID)
	p, err := jsonraw.Parse(params)
	if err != nil {
		return params
	}
	if m.Len() == 0 {
		p.Delete("_meta")
	} else if p.Set("_meta", m.Bytes()) != nil {
		return params
	}
	return p.Bytes()
}
