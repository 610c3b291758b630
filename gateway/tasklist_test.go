package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
)

// taskListUpstream is an upstream with tasks whose tasks/list pages are
// made by next (the cursor asked → the tasks and the next cursor); it
// counts the tasks/list requests.
func taskListUpstream(t *testing.T, next func(cursor string) (tasks, nextCursor string)) (string, *atomic.Int64) {
	var lists atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Cursor string `json:"cursor"`
			} `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &req) != nil || len(req.ID) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var result string
		switch req.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			result = `{"protocolVersion":"2025-11-25","capabilities":{"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}},"serverInfo":{"name":"cycler","version":"1"}}`
		case "tasks/list":
			lists.Add(1)
			tasks, nc := next(req.Params.Cursor)
			result = fmt.Sprintf(`{"tasks":[%s]}`, tasks)
			if nc != "" {
				result = fmt.Sprintf(`{"tasks":[%s],"nextCursor":%q}`, tasks, nc)
			}
		default:
			result = `{}`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &lists
}

func task(id string) string {
	return fmt.Sprintf(`{"taskId":%q,"status":"working","createdAt":"2026-12-07T00:00:00Z","lastUpdatedAt":"2026-12-07T00:00:00Z","ttl":null}`, id)
}

// TestUpstreamTaskListBounds: an upstream whose tasks/list cursors cycle,
// or whose pages never end, costs the gateway a bounded number of
// requests, and its answer counts as unknown (nil) so that no task is
// declared lost on its account.
func TestUpstreamTaskListBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		next  func(string) (string, string)
		calls int64
	}{
		{"cycling cursors", func(c string) (string, string) {
			switch c {
			case "":
				return task("t0"), "a"
			case "a":
				return task("t1"), "b"
			}
			return task("t2"), "a"
		}, 3},
		{"endless pages", func(c string) (string, string) {
			n, _ := strconv.Atoi(c)
			return task("t" + c), strconv.Itoa(n + 1)
		}, maxTaskListPages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, lists := taskListUpstream(t, tc.next)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "gw", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			g := &Gateway{}
			u := &upstream{logger: slog.New(slog.DiscardHandler)}
			if m := g.upstreamTasks(ctx, u, cs); m != nil {
				t.Errorf("upstreamTasks = %d tasks, want nil (unknown)", len(m))
			}
			if n := lists.Load(); n != tc.calls {
				t.Errorf("tasks/list requests = %d, want %d", n, tc.calls)
			}
		})
	}
}
