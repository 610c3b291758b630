package mcp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// TestStreamableClientWaitsForRoom: a server that takes only so many
// requests of a session at once answers the rest 429; the client learns
// the bound, waits for one of its requests to be answered and sends the
// refused one again, so every call succeeds.
func TestStreamableClientWaitsForRoom(t *testing.T) {
	gate := make(chan struct{})
	var entered atomic.Int32
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	s.AddTool(&Tool{Name: "wait", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		entered.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "done"}}}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return s }, &StreamableHTTPOptions{MaxStreamsPerSession: 3})
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &busyStatusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusTooManyRequests {
			refused.Add(1)
		}
	}))
	defer srv.Close()
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	const calls = 6
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cs.CallTool(ctx, &CallToolParams{Name: "wait", Arguments: jsontext.Value(`{}`)})
			errs <- err
		}()
	}
	// At most 3 calls are admitted (2 when the GET stream is open), and
	// at least one is refused while they are still running. How many are
	// refused depends on how many were sent before the first refusal
	// taught the client the bound, so only "at least one" is asserted.
	for refused.Load() < 1 || entered.Load() < 2 {
		if ctx.Err() != nil {
			t.Fatalf("only %d refusals, %d calls admitted", refused.Load(), entered.Load())
		}
		time.Sleep(5 * time.Millisecond) // polling an "eventually" condition
	}
	if n := entered.Load(); n > 3 {
		t.Fatalf("%d calls ran at once, above the bound", n)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call: %v", err)
		}
	}
	if n := entered.Load(); n != calls {
		t.Errorf("%d calls ran, want %d", n, calls)
	}
}

// busyStatusRecorder remembers the status a handler wrote.
type busyStatusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *busyStatusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *busyStatusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// TestStreamableClientBusyBound: a 429 with others in flight sets the
// bound to their number; answers received at the bound raise it by one
// every busyProbeEvery; a 429 with none in flight is the answer.
func TestStreamableClientBusyBound(t *testing.T) {
	c := &streamableClientConn{}
	c.posts = 1
	if c.busy() {
		t.Fatal("a 429 with no other request in flight was retried")
	}
	c.posts = 5
	if !c.busy() || c.limit != 4 {
		t.Fatalf("busy with 4 others in flight: limit %d, want 4", c.limit)
	}
	c.posts = 4 // the refused request gave its place back
	for i := range busyProbeEvery {
		c.releasePost()
		c.posts++ // the next request takes the place
		if i < busyProbeEvery-1 && c.limit != 4 {
			t.Fatalf("after %d answers at the bound: limit %d", i+1, c.limit)
		}
	}
	if c.limit != 5 {
		t.Fatalf("after %d answers at the bound: limit %d, want 5", busyProbeEvery, c.limit)
	}
	c.posts = 3
	c.releasePost() // below the bound: no probe counted
	if c.atLimit != 0 || c.limit != 5 {
		t.Fatalf("an answer below the bound counted: atLimit %d, limit %d", c.atLimit, c.limit)
	}
}
