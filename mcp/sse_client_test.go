package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ctLegacyServer is a hand-written 2024-11-05 HTTP+SSE server: GET /sse opens
// the stream and names /messages?sessionId=1 as the endpoint; POSTed
// requests are answered on the stream.
type ctLegacyServer struct {
	srv      *httptest.Server
	endpoint string // the data of the endpoint event
	out      chan string
	mu       sync.Mutex
	posts    []string
	closeSSE chan struct{}
}

func ctNewLegacyServer(t *testing.T) *ctLegacyServer {
	ls := &ctLegacyServer{endpoint: "/messages?sessionId=1", out: make(chan string, 16), closeSSE: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "bad accept", 400)
			return
		}
		f := ctStartSSE(w)
		fmt.Fprintf(w, ": hello\n\nevent: endpoint\ndata: %s\n\n", ls.endpoint)
		f.Flush()
		for {
			select {
			case m := <-ls.out:
				fmt.Fprintf(w, "event: message\ndata: %s\n\n", m)
				f.Flush()
			case <-ls.closeSSE:
				return
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("POST /sse", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("POST /messages", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sessionId") != "1" {
			http.Error(w, "unknown session", 404)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ls.mu.Lock()
		ls.posts = append(ls.posts, string(body))
		ls.mu.Unlock()
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "Accepted")
		if m, ok := msg.(*jsonrpc.Request); ok && !m.IsNotification() {
			result := `{"echo":"` + m.Method + `"}`
			if m.Method == MethodInitialize {
				result = `{"protocolVersion":"2024-11-05","capabilities":{},"serverInfo":{"name":"legacy","version":"1"}}`
			}
			ls.out <- ctResultFor(m.ID, result)
		}
	})
	ls.srv = httptest.NewServer(mux)
	t.Cleanup(ls.srv.Close)
	return ls
}

func TestSSEClientRoundTrip(t *testing.T) {
	ls := ctNewLegacyServer(t)
	conn, err := (&SSEClientTransport{Endpoint: ls.srv.URL + "/sse"}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	for i := int64(1); i <= 3; i++ {
		if err := conn.Write(ctx, ctReq(i, "m"+fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		r := ctReadResponse(t, conn)
		if r.ID != jsonrpc.Int64ID(i) || string(r.Result) != fmt.Sprintf(`{"echo":"m%d"}`, i) {
			t.Fatalf("response = %+v", r)
		}
	}
	if err := conn.Write(ctx, &jsonrpc.Request{Method: NotificationInitialized}); err != nil {
		t.Fatal(err)
	}
	if conn.SessionID() != "" {
		t.Errorf("SessionID = %q", conn.SessionID())
	}
	// The server ends the stream: Read reports the end.
	close(ls.closeSSE)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := conn.Read(rctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the stream ended = %v, want EOF", err)
	}
	if err := conn.Write(ctx, ctReq(9, "x")); err == nil {
		t.Fatal("Write after the stream ended succeeded")
	}
}

func TestSSEClientConnectErrors(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string // endpoint event data
		path     string
		want     string
	}{
		{"other origin", "http://example.com/messages", "/sse", "not the same origin"},
		{"not found", "/messages", "/nope", "404"},
		{"bad url", "http://[::1", "/sse", "invalid endpoint event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := ctNewLegacyServer(t)
			ls.endpoint = tt.endpoint
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := (&SSEClientTransport{Endpoint: ls.srv.URL + tt.path}).Connect(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Connect = %v, want error containing %q", err, tt.want)
			}
		})
	}
	// A server that never sends the endpoint event: ctx bounds the wait.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctStartSSE(w)
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := (&SSEClientTransport{Endpoint: srv.URL}).Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect without endpoint event = %v", err)
	}
	if _, err := (&SSEClientTransport{Endpoint: "relative/path"}).Connect(ctx); err == nil {
		t.Fatal("Connect with a relative endpoint succeeded")
	}
}

func TestAutoClientTransportFallback(t *testing.T) {
	ls := ctNewLegacyServer(t)
	conn, err := (&AutoClientTransport{Endpoint: ls.srv.URL + "/sse"}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if err := conn.Write(ctx, ctReq(1, MethodInitialize)); err != nil {
		t.Fatal(err)
	}
	if r := ctReadResponse(t, conn); r.ID != jsonrpc.Int64ID(1) || !strings.Contains(string(r.Result), "2024-11-05") {
		t.Fatalf("response = %+v", r)
	}
	conn.(protocolVersionSetter).setProtocolVersion(Version20241105)
	if err := conn.Write(ctx, ctReq(2, MethodToolsList)); err != nil {
		t.Fatal(err)
	}
	if r := ctReadResponse(t, conn); r.ID != jsonrpc.Int64ID(2) {
		t.Fatalf("response = %+v", r)
	}
	ls.mu.Lock()
	n := len(ls.posts)
	ls.mu.Unlock()
	if n != 2 {
		t.Fatalf("legacy endpoint got %d POSTs, want 2", n)
	}
}

func TestAutoClientTransportStreamable(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		w.Header().Set("Mcp-Session-Id", "s9")
		ctWriteJSON(w, 200, ctResultFor(m.ID, `{}`))
	}
	conn, err := (&AutoClientTransport{Endpoint: ws.srv.URL}).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Write(context.Background(), ctReq(1, MethodInitialize)); err != nil {
		t.Fatal(err)
	}
	ctReadResponse(t, conn)
	if conn.SessionID() != "s9" {
		t.Fatalf("SessionID = %q", conn.SessionID())
	}
	if n := len(ws.requests(http.MethodGet)); n != 0 {
		t.Fatalf("%d GETs: fell back although the server speaks Streamable HTTP", n)
	}
	// Errors other than 400/404/405 do not trigger the fallback.
	ws2 := ctNewWireServer(t)
	ws2.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}
	conn2, _ := (&AutoClientTransport{Endpoint: ws2.srv.URL}).Connect(context.Background())
	defer conn2.Close()
	var se *HTTPStatusError
	if err := conn2.Write(context.Background(), ctReq(1, MethodInitialize)); !errors.As(err, &se) || se.StatusCode != 401 {
		t.Fatalf("Write = %v, want the 401", err)
	}
	if n := len(ws2.requests(http.MethodGet)); n != 0 {
		t.Fatalf("fell back on 401")
	}
}

func TestSSEClientEndToEnd(t *testing.T) {
	server := ctE2EServer()
	srv := httptest.NewServer(NewSSEHandler(func(*http.Request) *Server { return server }, nil))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		tr   Transport
	}{
		{"SSEClientTransport", &SSEClientTransport{Endpoint: srv.URL + "/sse"}},
		{"AutoClientTransport", &AutoClientTransport{Endpoint: srv.URL + "/sse"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
			cs, err := client.Connect(ctx, tc.tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo", Arguments: []byte(`{"a":"b"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if got := ctTextOf(t, res); got != `echo:{"a":"b"}` {
				t.Errorf("echo = %q", got)
			}
			res, err = cs.CallTool(ctx, &CallToolParams{Name: "pingback"})
			if err != nil {
				t.Fatal(err)
			}
			if got := ctTextOf(t, res); got != "pinged" {
				t.Errorf("pingback = %q", got)
			}
		})
	}
}

func TestAutoClientTransportEndToEndStreamable(t *testing.T) {
	server := ctE2EServer()
	var gets, posts ctAtomicCounter
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			gets.add()
		case http.MethodPost:
			posts.add()
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &AutoClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ID() == "" {
		t.Error("no Streamable HTTP session id")
	}
	if _, err := cs.CallTool(ctx, &CallToolParams{Name: "echo"}); err != nil {
		t.Fatal(err)
	}
	if posts.get() != 3 || gets.get() != 1 {
		t.Errorf("%d POSTs and %d GETs, want 3 (initialize, initialized, call) and 1 (listening stream)", posts.get(), gets.get())
	}
}

type ctAtomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *ctAtomicCounter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *ctAtomicCounter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestSSEClientInteropGoSDK(t *testing.T) {
	server := ctGoSDKServer()
	srv := httptest.NewServer(gomcp.NewSSEHandler(func(*http.Request) *gomcp.Server { return server }, nil))
	defer srv.Close()
	t.Run("SSEClientTransport", func(t *testing.T) { ctInterop(t, &SSEClientTransport{Endpoint: srv.URL}) })
	t.Run("AutoClientTransport", func(t *testing.T) { ctInterop(t, &AutoClientTransport{Endpoint: srv.URL}) })
}
