package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/mcp"
)

// TestOversizeHTTPResponse: an upstream's answer over the message size
// limit, on Streamable HTTP (as a JSON body and as an SSE event) and on
// the legacy SSE transport, fails the waiting call at once with a clear
// error; on Streamable HTTP the session stays usable.
func TestOversizeHTTPResponse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		json      bool
		want      string
	}{
		{"streamable-sse", config.TransportStreamable, false, "exceeds the limit of 4194304 bytes"},
		{"streamable-json", config.TransportStreamable, true, "exceeds the limit of 4194304 bytes"},
		// The legacy stream cannot skip the event: the upstream session
		// ends (the log says why) and the call fails at once.
		{"legacy-sse", config.TransportSSE, false, "exceeds the message size limit of 4194304 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testUpstream("huge", nil)
			var h http.Handler
			if tc.transport == config.TransportSSE {
				h = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil)
			} else {
				h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: tc.json})
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			_, url := startGateway(t, &config.Config{Upstreams: []config.Upstream{{Name: "huge", URL: srv.URL, Transport: tc.transport, Timeout: 10 * time.Minute}}})
			cs := connect(t, url, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "huge_big"})
			if ctx.Err() != nil {
				t.Fatal("the call waited for the timeout")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("call = %v, want an error with %q", err, tc.want)
			}
			if tc.transport == config.TransportSSE {
				return // the upstream session is reconnected with back-off
			}
			if got := callText(t, cs, "huge_whoami"); got != "huge" {
				t.Fatalf("whoami after = %q", got)
			}
		})
	}
}
