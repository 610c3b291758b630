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
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/jsonrpc"
)

// ctWireServer is a hand-written Streamable HTTP server for testing the
// client at the wire level: each test installs the handlers it needs and
// inspects the requests that arrived.
type ctWireServer struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []ctWireRequest

	post func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message)
	get  func(w http.ResponseWriter, r *http.Request)
	del  func(w http.ResponseWriter, r *http.Request)
}

type ctWireRequest struct {
	method string
	header http.Header
	body   string
	at     time.Time
}

func ctNewWireServer(t *testing.T) *ctWireServer {
	ws := &ctWireServer{t: t}
	ws.srv = httptest.NewServer(http.HandlerFunc(ws.serve))
	t.Cleanup(ws.srv.Close)
	return ws
}

func (ws *ctWireServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ws.mu.Lock()
	ws.reqs = append(ws.reqs, ctWireRequest{r.Method, r.Header.Clone(), string(body), time.Now()})
	post, get, del := ws.post, ws.get, ws.del
	ws.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		msg, err := jsonrpc.DecodeMessage(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if post == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		post(w, r, msg)
	case http.MethodGet:
		if get == nil {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		get(w, r)
	case http.MethodDelete:
		if del == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		del(w, r)
	}
}

func (ws *ctWireServer) requests(method string) []ctWireRequest {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []ctWireRequest
	for _, r := range ws.reqs {
		if method == "" || r.method == method {
			out = append(out, r)
		}
	}
	return out
}

func (ws *ctWireServer) connect(t *testing.T, tr *StreamableClientTransport) *streamableClientConn {
	t.Helper()
	if tr == nil {
		tr = &StreamableClientTransport{}
	}
	tr.Endpoint = ws.srv.URL + "/mcp"
	conn, err := tr.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.(*streamableClientConn)
}

func ctWriteJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func ctResultFor(id jsonrpc.ID, result string) string {
	b, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Result: []byte(result)})
	return string(b)
}

func ctStartSSE(w http.ResponseWriter) http.Flusher {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	f.Flush()
	return f
}

func ctReadMsg(t *testing.T, c Connection) jsonrpc.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return m
}

func ctReadResponse(t *testing.T, c Connection) *jsonrpc.Response {
	t.Helper()
	m := ctReadMsg(t, c)
	r, ok := m.(*jsonrpc.Response)
	if !ok {
		t.Fatalf("got %T %+v, want a response", m, m)
	}
	return r
}

func ctReq(id int64, method string) *jsonrpc.Request {
	return &jsonrpc.Request{ID: jsonrpc.Int64ID(id), Method: method, Params: []byte(`{}`)}
}

func TestStreamableClientJSONAndHeaders(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		if m.IsNotification() {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		if m.Method == MethodInitialize {
			w.Header().Set("Mcp-Session-Id", "sess-1")
		}
		ctWriteJSON(w, 200, ctResultFor(m.ID, `{"ok":true}`))
	}
	c := ws.connect(t, &StreamableClientTransport{Header: http.Header{"X-Custom": {"v"}}})
	ctx := context.Background()
	if err := c.Write(ctx, ctReq(1, MethodInitialize)); err != nil {
		t.Fatal(err)
	}
	if r := ctReadResponse(t, c); r.ID != jsonrpc.Int64ID(1) || string(r.Result) != `{"ok":true}` {
		t.Fatalf("response = %+v", r)
	}
	if got := c.SessionID(); got != "sess-1" {
		t.Fatalf("SessionID = %q", got)
	}
	c.setProtocolVersion("2025-11-25")
	if err := c.Write(ctx, &jsonrpc.Request{Method: NotificationInitialized}); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, ctReq(2, MethodToolsList)); err != nil {
		t.Fatal(err)
	}
	ctReadResponse(t, c)

	posts := ws.requests(http.MethodPost)
	if len(posts) != 3 {
		t.Fatalf("%d POSTs, want 3", len(posts))
	}
	for i, p := range posts {
		if got := p.header.Get("Accept"); !strings.Contains(got, "application/json") || !strings.Contains(got, "text/event-stream") {
			t.Errorf("POST %d Accept = %q", i, got)
		}
		if got := p.header.Get("Content-Type"); got != "application/json" {
			t.Errorf("POST %d Content-Type = %q", i, got)
		}
		if got := p.header.Get("X-Custom"); got != "v" {
			t.Errorf("POST %d X-Custom = %q", i, got)
		}
		wantSID, wantVer := "sess-1", "2025-11-25"
		if i == 0 {
			wantSID, wantVer = "", ""
		}
		if got := p.header.Get("Mcp-Session-Id"); got != wantSID {
			t.Errorf("POST %d Mcp-Session-Id = %q, want %q", i, got, wantSID)
		}
		if got := p.header.Get("MCP-Protocol-Version"); got != wantVer {
			t.Errorf("POST %d MCP-Protocol-Version = %q, want %q", i, got, wantVer)
		}
	}
	// The listening stream was tried after initialized (405 here: fine).
	if gets := ws.requests(http.MethodGet); len(gets) != 1 || gets[0].header.Get("Accept") != "text/event-stream" || gets[0].header.Get("Mcp-Session-Id") != "sess-1" {
		t.Fatalf("GETs = %+v", gets)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dels := ws.requests(http.MethodDelete)
	if len(dels) != 1 || dels[0].header.Get("Mcp-Session-Id") != "sess-1" {
		t.Fatalf("DELETEs = %+v", dels)
	}
	if _, err := c.Read(ctx); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := c.Write(ctx, ctReq(3, MethodPing)); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestStreamableClientSSEResponse(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		f := ctStartSSE(w)
		fmt.Fprintf(w, "id: a1\nretry: 1000\ndata: \n\n")
		fmt.Fprintf(w, ": comment\n\nevent: message\nid: a2\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\n")
		fmt.Fprintf(w, "data: \"params\":{\"progressToken\":1,\"progress\":1}}\n\n")
		fmt.Fprintf(w, "event: other\ndata: ignored\n\n")
		fmt.Fprintf(w, "data: not json\n\n")
		f.Flush()
		fmt.Fprintf(w, "id: a3\ndata: %s\n\n", ctResultFor(m.ID, `{"n":1}`))
	}
	c := ws.connect(t, nil)
	if err := c.Write(context.Background(), ctReq(7, MethodToolsCall)); err != nil {
		t.Fatal(err)
	}
	n, ok := ctReadMsg(t, c).(*jsonrpc.Request)
	if !ok || n.Method != NotificationProgress {
		t.Fatalf("first message = %+v", n)
	}
	if r := ctReadResponse(t, c); r.ID != jsonrpc.Int64ID(7) || string(r.Result) != `{"n":1}` {
		t.Fatalf("response = %+v", r)
	}
	// No reconnection after the response arrived.
	time.Sleep(50 * time.Millisecond)
	if gets := ws.requests(http.MethodGet); len(gets) != 0 {
		t.Fatalf("unexpected GETs: %d", len(gets))
	}
}

// TestStreamableClientResume checks the sse-retry behaviour: a request's
// stream closed after the priming event is resumed with GET and
// Last-Event-ID after exactly the server's retry delay.
func TestStreamableClientResume(t *testing.T) {
	const retry = 300 * time.Millisecond
	ws := ctNewWireServer(t)
	var closedAt atomic.Int64
	var pending atomic.Value
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		pending.Store(m.ID)
		f := ctStartSSE(w)
		fmt.Fprintf(w, "id: ev-1\nretry: %d\ndata: \n\n", retry.Milliseconds())
		f.Flush()
		closedAt.Store(time.Now().UnixNano())
	}
	ws.get = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") == "" {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		ctStartSSE(w)
		fmt.Fprintf(w, "id: ev-2\ndata: %s\n\n", ctResultFor(pending.Load().(jsonrpc.ID), `{"resumed":true}`))
	}
	c := ws.connect(t, nil)
	if err := c.Write(context.Background(), ctReq(1, MethodToolsCall)); err != nil {
		t.Fatal(err)
	}
	r := ctReadResponse(t, c)
	if r.ID != jsonrpc.Int64ID(1) || string(r.Result) != `{"resumed":true}` {
		t.Fatalf("response = %+v", r)
	}
	gets := ws.requests(http.MethodGet)
	if len(gets) != 1 {
		t.Fatalf("%d GETs, want 1", len(gets))
	}
	if got := gets[0].header.Get("Last-Event-ID"); got != "ev-1" {
		t.Errorf("Last-Event-ID = %q, want ev-1", got)
	}
	delay := gets[0].at.Sub(time.Unix(0, closedAt.Load()))
	if delay < retry-20*time.Millisecond || delay > retry+200*time.Millisecond {
		t.Errorf("reconnected after %v, want about %v", delay, retry)
	}
}

func TestStreamableClientStreamLost(t *testing.T) {
	tests := []struct {
		name string
		sse  string // what the POST stream sends before closing
		get  int    // GET status (0: event stream that closes at once)
		want string // in the error message
	}{
		{"no event id", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n", 0, "no event id"},
		{"resume refused", "id: 1\nretry: 10\ndata:\n\n", http.StatusMethodNotAllowed, "405"},
		{"resume fails", "id: 1\nretry: 10\ndata:\n\n", http.StatusInternalServerError, "reconnection attempts failed"},
		{"resume empty", "id: 1\nretry: 10\ndata:\n\n", 0, "reconnection attempts failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := ctNewWireServer(t)
			ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
				ctStartSSE(w)
				io.WriteString(w, tt.sse)
			}
			var gets atomic.Int32
			ws.get = func(w http.ResponseWriter, r *http.Request) {
				gets.Add(1)
				if tt.get != 0 {
					http.Error(w, "nope", tt.get)
					return
				}
				ctStartSSE(w)
			}
			c := ws.connect(t, &StreamableClientTransport{MaxRetries: 2})
			if err := c.Write(context.Background(), ctReq(4, MethodToolsCall)); err != nil {
				t.Fatal(err)
			}
			var r *jsonrpc.Response
			for r == nil {
				m := ctReadMsg(t, c)
				r, _ = m.(*jsonrpc.Response)
			}
			if r.ID != jsonrpc.Int64ID(4) || r.Error == nil || !strings.Contains(r.Error.Message, tt.want) {
				t.Fatalf("response = %+v, want an error mentioning %q", r, tt.want)
			}
			if n := gets.Load(); n > 3 {
				t.Errorf("%d GETs, want at most 3", n)
			}
		})
	}
}

func TestStreamableClientSessionExpired(t *testing.T) {
	ws := ctNewWireServer(t)
	var expired atomic.Bool
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		if expired.Load() {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Mcp-Session-Id", "s1")
		ctWriteJSON(w, 200, ctResultFor(m.ID, `{}`))
	}
	c := ws.connect(t, nil)
	ctx := context.Background()
	if err := c.Write(ctx, ctReq(1, MethodInitialize)); err != nil {
		t.Fatal(err)
	}
	ctReadResponse(t, c)
	expired.Store(true)
	err := c.Write(ctx, ctReq(2, MethodPing))
	if !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("Write error = %v, want ErrSessionExpired", err)
	}
	var se *HTTPStatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(se.Body, "session not found") {
		t.Fatalf("error = %v, want the 404 with its body", err)
	}
	if _, err := c.Read(ctx); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("Read error = %v, want ErrSessionExpired", err)
	}
	c.Close()
	if n := len(ws.requests(http.MethodDelete)); n != 0 {
		t.Errorf("%d DELETEs for an expired session, want 0", n)
	}
}

func TestStreamableClientHTTPErrors(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m := msg.(*jsonrpc.Request)
		switch m.Method {
		case "jsonerr":
			ctWriteJSON(w, 400, `{"jsonrpc":"2.0","id":`+m.ID.String()+`,"error":{"code":-32602,"message":"bad params"}}`)
		case "noid":
			ctWriteJSON(w, 400, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad header"}}`)
		case "text":
			http.Error(w, strings.Repeat("x", 2000), http.StatusInternalServerError)
		case "weird":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		case "badjson":
			ctWriteJSON(w, 200, `{"jsonrpc":"2.0","id":1,"id":2,"result":{}}`)
		case "note":
			http.Error(w, "refused", http.StatusForbidden)
		}
	}
	c := ws.connect(t, nil)
	ctx := context.Background()
	if err := c.Write(ctx, ctReq(1, "jsonerr")); err != nil {
		t.Fatalf("JSON-RPC error body: Write = %v", err)
	}
	if r := ctReadResponse(t, c); r.Error == nil || r.Error.Code != -32602 {
		t.Fatalf("response = %+v", r)
	}
	tests := []struct {
		msg    jsonrpc.Message
		status int
		want   string
	}{
		{ctReq(2, "noid"), 400, "bad header"},
		{ctReq(3, "text"), 500, "500 Internal Server Error: xxx"},
		{ctReq(4, "weird"), 0, `unexpected response content type "text/html"`},
		{ctReq(5, "badjson"), 0, "invalid JSON-RPC message"},
		{&jsonrpc.Request{Method: "note"}, 403, "refused"},
	}
	for _, tt := range tests {
		err := c.Write(ctx, tt.msg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Write(%v) = %v, want error containing %q", tt.msg, err, tt.want)
			continue
		}
		var se *HTTPStatusError
		if tt.status != 0 && (!errors.As(err, &se) || se.StatusCode != tt.status || len(se.Body) > errorBodySnippet) {
			t.Errorf("Write(%v) = %#v, want HTTPStatusError %d with a short body", tt.msg, err, tt.status)
		}
	}
}

func TestStreamableClientStandaloneStream(t *testing.T) {
	ws := ctNewWireServer(t)
	var gets atomic.Int32
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		m, ok := msg.(*jsonrpc.Request)
		if !ok || m.IsNotification() {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Mcp-Session-Id", "s1")
		ctWriteJSON(w, 200, ctResultFor(m.ID, `{}`))
	}
	ws.get = func(w http.ResponseWriter, r *http.Request) {
		n := gets.Add(1)
		f := ctStartSSE(w)
		if n == 1 {
			// The first stream delivers a message and closes: the client
			// resumes it.
			fmt.Fprintf(w, "id: g1\nretry: 20\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n")
			return
		}
		if got := r.Header.Get("Last-Event-ID"); got != "g1" {
			t.Errorf("resumed with Last-Event-ID %q, want g1", got)
		}
		fmt.Fprintf(w, "id: g2\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"ping\"}\n\n")
		f.Flush()
		<-r.Context().Done()
	}
	c := ws.connect(t, nil)
	ctx := context.Background()
	if err := c.Write(ctx, ctReq(1, MethodInitialize)); err != nil {
		t.Fatal(err)
	}
	ctReadResponse(t, c)
	if err := c.Write(ctx, &jsonrpc.Request{Method: NotificationInitialized}); err != nil {
		t.Fatal(err)
	}
	if m := ctReadMsg(t, c).(*jsonrpc.Request); m.Method != NotificationToolsListChanged {
		t.Fatalf("got %+v", m)
	}
	if m := ctReadMsg(t, c).(*jsonrpc.Request); m.Method != MethodPing || m.ID != jsonrpc.StringID("srv-1") {
		t.Fatalf("got %+v", m)
	}
	// Answering the server's request is a POST that gets 202.
	if err := c.Write(ctx, &jsonrpc.Response{ID: jsonrpc.StringID("srv-1"), Result: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung with an open listening stream")
	}
}

func TestStreamableClientReadContext(t *testing.T) {
	ws := ctNewWireServer(t)
	c := ws.connect(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v", err)
	}
	// A request whose context ends while the server is slow.
	block := make(chan struct{})
	defer close(block)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := c.Write(ctx2, ctReq(1, MethodPing)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v", err)
	}
}

func TestStreamableClientConnectErrors(t *testing.T) {
	for _, ep := range []string{"", "://bad"} {
		if _, err := (&StreamableClientTransport{Endpoint: ep}).Connect(context.Background()); err == nil {
			t.Errorf("Connect(%q) succeeded", ep)
		}
	}
}

// ctE2EServer returns a Server with an "echo" tool and a "pingback" tool
// that pings the client before answering (which makes the response an
// event stream carrying a server request).
func ctE2EServer() *Server {
	s := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	s.AddTool(&Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "echo:" + string(req.Params.Arguments)}}}, nil
	})
	s.AddTool(&Tool{Name: "pingback", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		if err := req.Session.Ping(ctx); err != nil {
			return nil, err
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "pinged"}}}, nil
	})
	return s
}

func ctTextOf(t *testing.T, res *CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content = %+v", res.Content)
	}
	tc, ok := res.Content[0].(*TextContent)
	if !ok {
		t.Fatalf("content = %T", res.Content[0])
	}
	return tc.Text
}

func TestStreamableClientEndToEnd(t *testing.T) {
	for _, jsonResp := range []bool{false, true} {
		t.Run(fmt.Sprintf("JSONResponse=%v", jsonResp), func(t *testing.T) {
			server := ctE2EServer()
			var sessions atomic.Int32
			handler := NewStreamableHTTPHandler(func(*http.Request) *Server { sessions.Add(1); return server }, &StreamableHTTPOptions{JSONResponse: jsonResp})
			var deletes atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete {
					deletes.Add(1)
				}
				handler.ServeHTTP(w, r)
			}))
			defer srv.Close()

			changed := make(chan struct{}, 4)
			client := NewClient(&Implementation{Name: "c", Version: "1"}, &ClientOptions{
				ToolListChangedHandler: func(context.Context, *ClientSession) { changed <- struct{}{} },
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cs, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cs.ID() == "" {
				t.Error("no session id")
			}
			tools, err := cs.ListTools(ctx, nil)
			if err != nil || len(tools.Tools) != 2 {
				t.Fatalf("ListTools = %+v, %v", tools, err)
			}
			res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"x":1}`)})
			if err != nil {
				t.Fatal(err)
			}
			if got := ctTextOf(t, res); got != `echo:{"x":1}` {
				t.Errorf("echo = %q", got)
			}
			res, err = cs.CallTool(ctx, &CallToolParams{Name: "pingback"})
			if err != nil {
				t.Fatal(err)
			}
			if got := ctTextOf(t, res); got != "pinged" {
				t.Errorf("pingback = %q", got)
			}
			// A change of the tool list reaches the client on the
			// listening stream.
			server.AddTool(&Tool{Name: "late", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
				return &CallToolResult{}, nil
			})
			select {
			case <-changed:
			case <-ctx.Done():
				t.Fatal("no tools/list_changed notification")
			}
			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}
			if n := deletes.Load(); n != 1 {
				t.Errorf("%d DELETEs on Close, want 1", n)
			}
		})
	}
}

func TestStreamableClientEndToEndSessionExpiry(t *testing.T) {
	server := ctE2EServer()
	handler := NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, &StreamableHTTPOptions{SessionTimeout: 100 * time.Millisecond})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Without the listening stream, which keeps the session alive.
	hc := &http.Client{Transport: ctRoundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet {
			return &http.Response{StatusCode: http.StatusMethodNotAllowed, Status: "405 Method Not Allowed", Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	cs, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	first := cs.ID()
	time.Sleep(400 * time.Millisecond)
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo"})
	if err != nil {
		t.Fatalf("CallTool after the session expired: %v", err)
	}
	ctTextOf(t, res)
	if cs.ID() == first || cs.ID() == "" {
		t.Errorf("session id %q after expiry, was %q: want a new session", cs.ID(), first)
	}
}

type ctRoundTripFunc func(*http.Request) (*http.Response, error)

func (f ctRoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkStreamableCallTool measures one tools/call round trip over
// Streamable HTTP, client and server together (allocations of both count).
func BenchmarkStreamableCallTool(b *testing.B) {
	server := ctE2EServer()
	srv := httptest.NewServer(NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil))
	defer srv.Close()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	ctx := context.Background()
	cs, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	params := &CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"msg":"hello"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStreamableClientSSERetryScenario replays the conformance suite's
// sse-retry scenario with the real Client: the tools/call stream sends a
// priming event with retry 500 and closes after 50ms; the client must
// resume it with GET and Last-Event-ID 450-700ms later, and gets the
// result on that stream. The listening GET stream (without Last-Event-ID)
// stays open meanwhile.
func TestStreamableClientSSERetryScenario(t *testing.T) {
	const retryMS = 500
	var (
		mu        sync.Mutex
		pending   *jsonrpc.ID
		closedAt  time.Time
		resumedAt time.Time
		lastIDs   []string
		counter   int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "session-1")
		switch r.Method {
		case http.MethodGet:
			mu.Lock()
			counter++
			id := counter
			lid := r.Header.Get("Last-Event-ID")
			if lid != "" {
				resumedAt = time.Now()
				lastIDs = append(lastIDs, lid)
			}
			p := pending
			pending = nil
			mu.Unlock()
			f := ctStartSSE(w)
			fmt.Fprintf(w, "id: event-%d\nretry: %d\ndata: \n\n", id, retryMS)
			if p != nil {
				fmt.Fprintf(w, "event: message\nid: event-%d-r\ndata: %s\n\n", id, ctResultFor(*p, `{"content":[{"type":"text","text":"ok"}]}`))
			}
			f.Flush()
			<-r.Context().Done()
		case http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			msg, err := jsonrpc.DecodeMessage(body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			m, ok := msg.(*jsonrpc.Request)
			if !ok || m.IsNotification() {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			switch m.Method {
			case MethodInitialize:
				ctWriteJSON(w, 200, ctResultFor(m.ID, `{"protocolVersion":"2025-03-26","serverInfo":{"name":"mock","version":"1"},"capabilities":{"tools":{}}}`))
			case MethodToolsCall:
				mu.Lock()
				id := m.ID
				pending = &id
				counter++
				n := counter
				mu.Unlock()
				f := ctStartSSE(w)
				fmt.Fprintf(w, "id: event-%d\nretry: %d\ndata: \n\n", n, retryMS)
				f.Flush()
				time.Sleep(50 * time.Millisecond)
				mu.Lock()
				closedAt = time.Now()
				mu.Unlock()
			default:
				ctWriteJSON(w, 200, ctResultFor(m.ID, `{}`))
			}
		case http.MethodDelete:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ProtocolVersion() != Version20250326 || cs.ID() != "session-1" {
		t.Fatalf("version %q, session %q", cs.ProtocolVersion(), cs.ID())
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "test_reconnection"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctTextOf(t, res); got != "ok" {
		t.Fatalf("result %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	delay := resumedAt.Sub(closedAt)
	if delay < 450*time.Millisecond || delay > 700*time.Millisecond {
		t.Errorf("resumed %v after the stream closed, want 450-700ms", delay)
	}
	if len(lastIDs) != 1 || !strings.HasPrefix(lastIDs[0], "event-") {
		t.Errorf("Last-Event-IDs sent: %q", lastIDs)
	}
}

// ctGoSDKServer returns a server built on the official Go SDK with an
// "echo" tool and a "progress" tool that sends a log message before its
// result.
func ctGoSDKServer() *gomcp.Server {
	s := gomcp.NewServer(&gomcp.Implementation{Name: "gosdk", Version: "1"}, nil)
	s.AddTool(&gomcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: "echo:" + string(req.Params.Arguments)}}}, nil
	})
	s.AddTool(&gomcp.Tool{Name: "pingback", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *gomcp.CallToolRequest) (*gomcp.CallToolResult, error) {
		if err := req.Session.Ping(ctx, nil); err != nil {
			return nil, err
		}
		return &gomcp.CallToolResult{Content: []gomcp.Content{&gomcp.TextContent{Text: "pinged"}}}, nil
	})
	return s
}

// ctInterop runs the same checks against any server.
func ctInterop(t *testing.T, tr Transport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 2 {
		t.Fatalf("ListTools = %+v, %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo", Arguments: jsontext.Value(`{"k":"v"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctTextOf(t, res); got != `echo:{"k":"v"}` {
		t.Errorf("echo = %q", got)
	}
	res, err = cs.CallTool(ctx, &CallToolParams{Name: "pingback"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ctTextOf(t, res); got != "pinged" {
		t.Errorf("pingback = %q", got)
	}
}

func TestStreamableClientInteropGoSDK(t *testing.T) {
	server := ctGoSDKServer()
	for _, jsonResp := range []bool{false, true} {
		t.Run(fmt.Sprintf("JSONResponse=%v", jsonResp), func(t *testing.T) {
			srv := httptest.NewServer(gomcp.NewStreamableHTTPHandler(func(*http.Request) *gomcp.Server { return server }, &gomcp.StreamableHTTPOptions{JSONResponse: jsonResp}))
			defer srv.Close()
			ctInterop(t, &StreamableClientTransport{Endpoint: srv.URL})
		})
	}
}

func TestStreamableClientCloseWithOpenStreams(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		f := ctStartSSE(w)
		fmt.Fprintf(w, "id: 1\ndata:\n\n")
		f.Flush()
		<-r.Context().Done() // never answers
	}
	c := ws.connect(t, nil)
	for i := int64(1); i <= 3; i++ {
		if err := c.Write(context.Background(), ctReq(i, MethodToolsCall)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(context.Background())
		done <- err
	}()
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-done; !errors.Is(err, ErrConnectionClosed) {
		t.Errorf("Read = %v, want ErrConnectionClosed", err)
	}
}

func TestStreamableClientNoReconnect(t *testing.T) {
	ws := ctNewWireServer(t)
	ws.post = func(w http.ResponseWriter, r *http.Request, msg jsonrpc.Message) {
		ctStartSSE(w)
		fmt.Fprintf(w, "id: 1\nretry: 1\ndata:\n\n")
	}
	var gets atomic.Int32
	ws.get = func(w http.ResponseWriter, r *http.Request) { gets.Add(1) }
	c := ws.connect(t, &StreamableClientTransport{MaxRetries: -1})
	if err := c.Write(context.Background(), ctReq(1, MethodToolsCall)); err != nil {
		t.Fatal(err)
	}
	if r := ctReadResponse(t, c); r.Error == nil {
		t.Fatalf("response = %+v, want an error", r)
	}
	if n := gets.Load(); n != 0 {
		t.Errorf("%d GETs with reconnection disabled", n)
	}
}

func TestStreamableClientConcurrentCalls(t *testing.T) {
	server := ctE2EServer()
	srv := httptest.NewServer(NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			name := "echo"
			if i%4 == 0 {
				name = "pingback"
			}
			res, err := cs.CallTool(ctx, &CallToolParams{Name: name, Arguments: jsontext.Value(fmt.Sprintf(`{"i":%d}`, i))})
			if err != nil {
				errs <- err
				return
			}
			want := fmt.Sprintf(`echo:{"i":%d}`, i)
			if name == "pingback" {
				want = "pinged"
			}
			if tc, ok := res.Content[0].(*TextContent); !ok || tc.Text != want {
				errs <- fmt.Errorf("call %d got %+v, want %q", i, res.Content, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
