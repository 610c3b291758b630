package mcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/schematest"
	"github.com/mcpgate/mcpgate/jsonrpc"
)

// The tests in this file speak raw HTTP to a StreamableHTTPHandler serving a
// real Server, so that they check the wire exactly. Every JSON-RPC message
// they receive is validated against the 2025-11-25 schema.

const shAccept = "application/json, text/event-stream"

// shEnv is a test server: a Server with test tools behind a
// StreamableHTTPHandler on an httptest server (127.0.0.1).
type shEnv struct {
	t       *testing.T
	srv     *Server
	h       *StreamableHTTPHandler
	ts      *httptest.Server
	client  *http.Client // if set, used instead of ts.Client()
	url     string
	release chan struct{} // releases the "reconnect" and "block" tools
	started chan struct{} // the "block" tool has started
	ctxErr  chan error    // what the "block" tool saw of its context
}

func newSHEnv(t *testing.T, opts *StreamableHTTPOptions) *shEnv {
	t.Helper()
	e := newSHHandler(t, opts)
	e.ts = httptest.NewServer(e.h)
	e.url = e.ts.URL
	t.Cleanup(func() {
		e.h.Close()
		e.ts.Close()
	})
	return e
}

// newSHEnvInProcess is newSHEnv without a network server: requests are
// served by calling the handler in the requesting goroutine (see
// handlerTransport). It suits synctest bubbles, where a goroutine waiting
// on a socket would keep bubble time from passing, for requests answered
// with a complete response (not an open SSE stream).
func newSHEnvInProcess(t *testing.T, opts *StreamableHTTPOptions) *shEnv {
	t.Helper()
	e := newSHHandler(t, opts)
	e.client = &http.Client{Transport: handlerTransport{e.h}}
	e.url = "http://mcp.test/"
	t.Cleanup(func() { e.h.Close() })
	return e
}

// handlerTransport is an http.RoundTripper that calls a handler in the
// calling goroutine and returns its complete response.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// newSHHandler builds the test server and its handler.
func newSHHandler(t *testing.T, opts *StreamableHTTPOptions) *shEnv {
	t.Helper()
	e := &shEnv{
		t:       t,
		release: make(chan struct{}),
		started: make(chan struct{}, 8),
		ctxErr:  make(chan error, 8),
	}
	e.srv = NewServer(&Implementation{Name: "sh-test", Version: "1.0"}, nil)
	obj := jsontext.Value(`{"type":"object"}`)
	e.srv.AddTool(&Tool{Name: "echo", Description: "echoes", InputSchema: obj}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "echo " + string(req.Params.Arguments)}}}, nil
	})
	e.srv.AddTool(&Tool{Name: "progress", Description: "reports progress", InputSchema: obj}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		for i := range 3 {
			if err := req.Progress(ctx, float64(i), 3, ""); err != nil {
				return nil, err
			}
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "done"}}}, nil
	})
	e.srv.AddTool(&Tool{Name: "reconnect", Description: "closes its stream mid-call", InputSchema: obj}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		if err := req.Progress(ctx, 1, 2, "before"); err != nil {
			return nil, err
		}
		closed := CloseRequestStream(ctx)
		select {
		case <-e.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := req.Progress(ctx, 2, 2, "after"); err != nil {
			return nil, err
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "closed=" + strconv.FormatBool(closed)}}}, nil
	})
	e.srv.AddTool(&Tool{Name: "block", Description: "waits", InputSchema: obj}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		e.started <- struct{}{}
		select {
		case <-e.release:
			e.ctxErr <- ctx.Err()
			return &CallToolResult{Content: []Content{&TextContent{Text: "released"}}}, nil
		case <-ctx.Done():
			e.ctxErr <- ctx.Err()
			return nil, ctx.Err()
		}
	})
	e.srv.AddTool(&Tool{Name: "sample", Description: "asks the client's model", InputSchema: obj}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		res, err := req.Session.CreateMessage(ctx, &CreateMessageParams{
			Messages:  []*SamplingMessage{{Role: RoleUser, Content: []Content{&TextContent{Text: "hi"}}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, err
		}
		if len(res.Content) != 1 {
			return nil, fmt.Errorf("sampled %d content blocks", len(res.Content))
		}
		tc, _ := res.Content[0].(*TextContent)
		if tc == nil {
			return nil, fmt.Errorf("sampled content is %T", res.Content[0])
		}
		return &CallToolResult{Content: []Content{&TextContent{Text: "model said " + tc.Text}}}, nil
	})
	e.h = NewStreamableHTTPHandler(func(*http.Request) *Server { return e.srv }, opts)
	return e
}

// do sends a raw request. Headers with empty values are left out.
func (e *shEnv) do(method, sid string, body string, hdr map[string]string) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", shAccept)
	} else if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", Version20251125)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	client := e.client
	if client == nil {
		client = e.ts.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *shEnv) post(sid, body string) *http.Response {
	e.t.Helper()
	return e.do(http.MethodPost, sid, body, nil)
}

// initialize starts a session with the given protocol version and
// completes the handshake; it returns the session id.
func (e *shEnv) initialize(version string) string {
	e.t.Helper()
	resp := e.post("", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{"sampling":{},"roots":{}},"clientInfo":{"name":"raw","version":"1"}}}`)
	body := shReadAll(e.t, resp)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("initialize: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("initialize: Content-Type %q", ct)
	}
	shValidateResponse(e.t, body, "InitializeResult")
	sid := resp.Header.Get("Mcp-Session-Id")
	if len(sid) < 16 {
		e.t.Fatalf("session id %q is too short to be unguessable", sid)
	}
	for i := 0; i < len(sid); i++ {
		if sid[i] < 0x21 || sid[i] > 0x7e {
			e.t.Fatalf("session id %q has a byte outside visible ASCII", sid)
		}
	}
	resp = e.post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if b := shReadAll(e.t, resp); resp.StatusCode != http.StatusAccepted || len(b) != 0 {
		e.t.Fatalf("initialized notification: status %d, body %q; want 202 and no body", resp.StatusCode, b)
	}
	return sid
}

// shCheckErrorBody checks an HTTP error body: a JSON-RPC error response
// without an id (the 2025-11-25 schema makes the id optional there, and
// forbids null).
func shCheckErrorBody(t *testing.T, body []byte, code int64) {
	t.Helper()
	schematest.Validate(t, "JSONRPCErrorResponse", body)
	var e struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      jsontext.Value `json:"id"`
		Error   struct {
			Code    int64  `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.JSONRPC != "2.0" || e.ID != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("error body %s, want code %d with a message", body, code)
	}
}

func shReadAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shValidateResponse checks a JSON-RPC response against the schema, and its
// result against resultDef when that is not "".
func shValidateResponse(t *testing.T, data []byte, resultDef string) {
	t.Helper()
	msg, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		t.Fatalf("response %s does not decode: %v", data, err)
	}
	resp, ok := msg.(*jsonrpc.Response)
	if !ok {
		t.Fatalf("message %s is not a response", data)
	}
	if resp.Error != nil {
		schematest.Validate(t, "JSONRPCErrorResponse", data)
		return
	}
	schematest.Validate(t, "JSONRPCResultResponse", data)
	if resultDef != "" {
		schematest.Validate(t, resultDef, resp.Result)
	}
}

// shValidateMessage checks any JSON-RPC message against the schema.
func shValidateMessage(t *testing.T, data []byte) jsonrpc.Message {
	t.Helper()
	msg, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		t.Fatalf("message %s does not decode: %v", data, err)
	}
	switch m := msg.(type) {
	case *jsonrpc.Response:
		shValidateResponse(t, data, "")
	case *jsonrpc.Request:
		if m.IsNotification() {
			def := "JSONRPCNotification"
			if d, ok := requestDefs[m.Method]; ok {
				def = d
			}
			schematest.Validate(t, def, data)
		} else {
			def := "JSONRPCRequest"
			if d, ok := requestDefs[m.Method]; ok {
				def = d
			}
			schematest.Validate(t, def, data)
		}
	}
	return msg
}

// shEvent is one server-sent event as a client sees it.
type shEvent struct {
	id    string
	hasID bool
	event string
	data  string
	retry string
}

// shEvents parses an SSE body into events, delivered on the returned
// channel, which is closed at the end of the body.
func shEvents(body io.ReadCloser) <-chan shEvent {
	ch := make(chan shEvent, 64)
	go func() {
		defer close(ch)
		defer body.Close()
		r := bufio.NewReader(body)
		var ev shEvent
		var data []string
		dirty := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				if dirty {
					ev.data = strings.Join(data, "\n")
					ch <- ev
				}
				ev, data, dirty = shEvent{}, nil, false
				continue
			}
			if strings.HasPrefix(line, ":") {
				continue
			}
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			dirty = true
			switch name {
			case "id":
				ev.id, ev.hasID = value, true
			case "event":
				ev.event = value
			case "data":
				data = append(data, value)
			case "retry":
				ev.retry = value
			}
		}
	}()
	return ch
}

// next returns the next event, failing the test after a timeout. ok is
// false at the end of the stream.
func shNext(t *testing.T, ch <-chan shEvent) (shEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for an SSE event")
	}
	return shEvent{}, false
}

// shNextMessage returns the next event that carries a message, validated.
func shNextMessage(t *testing.T, ch <-chan shEvent) (shEvent, jsonrpc.Message) {
	t.Helper()
	for {
		ev, ok := shNext(t, ch)
		if !ok {
			t.Fatal("stream ended while waiting for a message")
		}
		if ev.data == "" {
			continue // priming
		}
		return ev, shValidateMessage(t, []byte(ev.data))
	}
}

func shExpectEnd(t *testing.T, ch <-chan shEvent) {
	t.Helper()
	if ev, ok := shNext(t, ch); ok {
		t.Fatalf("got event %+v, want the end of the stream", ev)
	}
}

func shResultText(t *testing.T, m jsonrpc.Message) string {
	t.Helper()
	resp, ok := m.(*jsonrpc.Response)
	if !ok {
		t.Fatalf("got %T, want a response", m)
	}
	if resp.Error != nil {
		t.Fatalf("got error %v", resp.Error)
	}
	schematest.Validate(t, "CallToolResult", resp.Result)
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(resp.Result, &r); err != nil || len(r.Content) == 0 {
		t.Fatalf("result %s: %v", resp.Result, err)
	}
	return r.Content[0].Text
}

func callBody(id int, tool string, progressToken string) string {
	meta := ""
	if progressToken != "" {
		meta = `,"_meta":{"progressToken":"` + progressToken + `"}`
	}
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}` + meta + `}}`
}

func TestStreamableJSONResponses(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)

	resp := e.post(sid, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	body := shReadAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("tools/list: %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	shValidateResponse(t, body, "ListToolsResult")

	resp = e.post(sid, callBody(2, "echo", ""))
	body = shReadAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("tools/call: %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	msg, _ := jsonrpc.DecodeMessage(body)
	if got := shResultText(t, msg); got != "echo {}" {
		t.Errorf("result text %q", got)
	}
	if id := msg.(*jsonrpc.Response).ID; id != jsonrpc.Int64ID(2) {
		t.Errorf("response id %v, want 2", id)
	}

	// A JSON-RPC error from the server is a normal 200 response.
	resp = e.post(sid, `{"jsonrpc":"2.0","id":"x","method":"no/such/method"}`)
	body = shReadAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown method: status %d", resp.StatusCode)
	}
	shValidateResponse(t, body, "")
	if m, _ := jsonrpc.DecodeMessage(body); m.(*jsonrpc.Response).Error.Code != jsonrpc.CodeMethodNotFound {
		t.Errorf("unknown method: %s", body)
	}
}

func TestStreamableHTTPErrors(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{MaxBodyBytes: 1000})
	sid := e.initialize(Version20251125)
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	tests := []struct {
		name    string
		method  string
		sid     string
		body    string
		hdr     map[string]string
		status  int
		rpcCode int64 // expected JSON-RPC error code in the body, 0 for no check
	}{
		{"request without session", "POST", "", list, nil, 400, jsonrpc.CodeInvalidRequest},
		{"unknown session", "POST", "no-such-session", list, nil, 404, jsonrpc.CodeInvalidRequest},
		{"unsupported protocol version", "POST", sid, list, map[string]string{"Mcp-Protocol-Version": "2099-01-01"}, 400, jsonrpc.CodeInvalidRequest},
		{"garbage protocol version", "POST", sid, list, map[string]string{"Mcp-Protocol-Version": "latest"}, 400, jsonrpc.CodeInvalidRequest},
		{"absent protocol version is fine", "POST", sid, list, map[string]string{"Mcp-Protocol-Version": ""}, 200, 0},
		{"older protocol version header", "POST", sid, list, map[string]string{"Mcp-Protocol-Version": Version20250326}, 200, 0},
		{"PUT", "PUT", sid, list, nil, 405, jsonrpc.CodeInvalidRequest},
		{"PATCH", "PATCH", sid, list, nil, 405, jsonrpc.CodeInvalidRequest},
		{"wrong content type", "POST", sid, list, map[string]string{"Content-Type": "text/plain"}, 415, jsonrpc.CodeInvalidRequest},
		{"wrong charset", "POST", sid, list, map[string]string{"Content-Type": "application/json; charset=latin1"}, 415, jsonrpc.CodeInvalidRequest},
		{"charset utf-8", "POST", sid, list, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 200, 0},
		{"accept only json", "POST", sid, list, map[string]string{"Accept": "application/json"}, 406, jsonrpc.CodeInvalidRequest},
		{"accept only sse", "POST", sid, list, map[string]string{"Accept": "text/event-stream"}, 406, jsonrpc.CodeInvalidRequest},
		{"no accept", "POST", sid, list, map[string]string{"Accept": ""}, 406, jsonrpc.CodeInvalidRequest},
		{"accept wildcard", "POST", sid, list, map[string]string{"Accept": "*/*"}, 200, 0},
		{"parse error", "POST", sid, `{"jsonrpc":"2.0",`, nil, 400, jsonrpc.CodeParseError},
		{"duplicate key", "POST", sid, `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, nil, 400, jsonrpc.CodeParseError},
		{"batch", "POST", sid, `[` + list + `]`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"null id", "POST", sid, `{"jsonrpc":"2.0","id":null,"method":"ping"}`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"not a message", "POST", sid, `{"jsonrpc":"2.0"}`, nil, 400, jsonrpc.CodeInvalidRequest},
		{"empty body", "POST", sid, ``, nil, 400, jsonrpc.CodeParseError},
		{"body too large", "POST", sid, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 1000) + `"}}`, nil, 413, jsonrpc.CodeInvalidRequest},
		{"GET without session", "GET", "", "", nil, 400, jsonrpc.CodeInvalidRequest},
		{"GET unknown session", "GET", "nope", "", nil, 404, jsonrpc.CodeInvalidRequest},
		{"GET without accept", "GET", sid, "", map[string]string{"Accept": "application/json"}, 406, jsonrpc.CodeInvalidRequest},
		{"GET bad Last-Event-ID", "GET", sid, "", map[string]string{"Last-Event-ID": "garbage"}, 400, jsonrpc.CodeInvalidRequest},
		{"GET Last-Event-ID of unknown stream", "GET", sid, "", map[string]string{"Last-Event-ID": "99_1"}, 400, jsonrpc.CodeInvalidRequest},
		{"GET Last-Event-ID never sent", "GET", sid, "", map[string]string{"Last-Event-ID": "0_7"}, 400, jsonrpc.CodeInvalidRequest},
		{"DELETE without session", "DELETE", "", "", nil, 400, jsonrpc.CodeInvalidRequest},
		{"DELETE unknown session", "DELETE", "nope", "", nil, 404, jsonrpc.CodeInvalidRequest},
		{"notification", "POST", sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, nil, 202, 0},
		{"response to nothing", "POST", sid, `{"jsonrpc":"2.0","id":77,"result":{}}`, nil, 202, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.do(tt.method, tt.sid, tt.body, tt.hdr)
			body := shReadAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if tt.status == 202 && len(body) != 0 {
				t.Errorf("202 with body %q", body)
			}
			if tt.rpcCode == 0 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("error Content-Type %q", ct)
			}
			shCheckErrorBody(t, body, tt.rpcCode)
		})
	}
}

func TestStreamableInitializeWithoutHeaderWithSessionID(t *testing.T) {
	// An initialize for an existing session goes to that session, which
	// refuses a second handshake; an unknown one gets 404.
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	init := `{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	resp := e.post(sid, init)
	body := shReadAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	shValidateResponse(t, body, "")
	if m, _ := jsonrpc.DecodeMessage(body); m.(*jsonrpc.Response).Error == nil {
		t.Errorf("second initialize succeeded: %s", body)
	}
	resp = e.post("unknown", init)
	shReadAll(t, resp)
	if resp.StatusCode != 404 {
		t.Errorf("initialize with unknown session id: status %d, want 404", resp.StatusCode)
	}
	// A failed initialize gets no session.
	resp = e.post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	body = shReadAll(t, resp)
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Errorf("failed initialize got session id %q (%s)", resp.Header.Get("Mcp-Session-Id"), body)
	}
	if n := len(e.srv.Sessions()); n != 1 {
		t.Errorf("server has %d sessions, want 1", n)
	}
}

func TestStreamableLazySSE(t *testing.T) {
	for _, tt := range []struct {
		version string
		priming bool
	}{
		{Version20251125, true},
		{Version20250618, false}, // older clients may choke on empty data
	} {
		t.Run(tt.version, func(t *testing.T) {
			e := newSHEnv(t, &StreamableHTTPOptions{RetryInterval: 1500 * time.Millisecond})
			sid := e.initialize(tt.version)
			resp := e.do("POST", sid, callBody(3, "progress", "tok"), map[string]string{"Mcp-Protocol-Version": tt.version})
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if resp.Header.Get("Mcp-Session-Id") != "" {
				t.Error("session id header repeated on a later response")
			}
			ch := shEvents(resp.Body)
			ids := map[string]bool{}
			if tt.priming {
				ev, ok := shNext(t, ch)
				if !ok || !ev.hasID || ev.id == "" || ev.data != "" || ev.retry != "1500" {
					t.Fatalf("first event %+v, want a priming event with an id, empty data and retry 1500", ev)
				}
				ids[ev.id] = true
			}
			for i := range 3 {
				ev, msg := shNextMessage(t, ch)
				n, ok := msg.(*jsonrpc.Request)
				if !ok || n.Method != NotificationProgress {
					t.Fatalf("event %d: %+v", i, ev)
				}
				var p ProgressNotificationParams
				if err := json.Unmarshal(n.Params, &p); err != nil || p.Progress != float64(i) {
					t.Errorf("progress %s: %v", n.Params, err)
				}
				if !ev.hasID || ids[ev.id] {
					t.Errorf("event id %q missing or repeated", ev.id)
				}
				ids[ev.id] = true
			}
			ev, msg := shNextMessage(t, ch)
			if got := shResultText(t, msg); got != "done" {
				t.Errorf("result %q", got)
			}
			if ids[ev.id] {
				t.Errorf("event id %q repeated", ev.id)
			}
			shExpectEnd(t, ch)
		})
	}
}

func TestStreamableConcurrentPOSTs(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Go(func() {
			var body string
			if i%2 == 0 {
				body = `{"jsonrpc":"2.0","id":` + strconv.Itoa(100+i) + `,"method":"tools/list"}`
			} else {
				body = callBody(100+i, "progress", "t"+strconv.Itoa(i))
			}
			req, _ := http.NewRequest("POST", e.url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", shAccept)
			req.Header.Set("Mcp-Session-Id", sid)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("request %d: status %d", i, resp.StatusCode)
				return
			}
			// The response must carry the request's own id, and
			// progress notifications its own token.
			if !strings.Contains(string(b), `"id":`+strconv.Itoa(100+i)) {
				errs <- fmt.Errorf("request %d: body lacks its id: %s", i, b)
			}
			for j := range 6 {
				if j != i && strings.Contains(string(b), `"progressToken":"t`+strconv.Itoa(j)+`"`) {
					errs <- fmt.Errorf("request %d got request %d's progress", i, j)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStreamableDeleteAndClose(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	get := e.do("GET", sid, "", nil)
	if get.StatusCode != 200 {
		t.Fatalf("GET: %d", get.StatusCode)
	}
	ch := shEvents(get.Body)
	resp := e.do("DELETE", sid, "", nil)
	shReadAll(t, resp)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: status %d", resp.StatusCode)
	}
	// The GET stream ends with the session.
	for {
		ev, ok := shNext(t, ch)
		if !ok {
			break
		}
		if ev.data != "" {
			t.Errorf("unexpected event %+v", ev)
		}
	}
	for _, m := range []string{"POST", "GET", "DELETE"} {
		resp := e.do(m, sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
		shReadAll(t, resp)
		if resp.StatusCode != 404 {
			t.Errorf("%s after DELETE: status %d, want 404", m, resp.StatusCode)
		}
	}
	if n := len(e.srv.Sessions()); n != 0 {
		t.Errorf("server still has %d sessions", n)
	}

	// Closing the ServerSession from the server side does the same.
	sid = e.initialize(Version20251125)
	get = e.do("GET", sid, "", nil)
	ch = shEvents(get.Body)
	sessions := e.srv.Sessions()
	if len(sessions) != 1 || sessions[0].ID() != sid {
		t.Fatalf("sessions %v, want one with id %s", sessions, sid)
	}
	sessions[0].Close()
	for {
		if _, ok := shNext(t, ch); !ok {
			break
		}
	}
	resp = e.post(sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	shReadAll(t, resp)
	if resp.StatusCode != 404 {
		t.Errorf("POST after Close: status %d, want 404", resp.StatusCode)
	}
}

func TestStreamableDNSRebinding(t *testing.T) {
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	tests := []struct {
		name   string
		opts   *StreamableHTTPOptions
		hdr    map[string]string
		status int
	}{
		{"default host", nil, nil, 200},
		{"evil host and origin", nil, map[string]string{"Host": "evil.example.com", "Origin": "http://evil.example.com"}, 403},
		{"evil host", nil, map[string]string{"Host": "evil.example.com"}, 403},
		{"evil host with port", nil, map[string]string{"Host": "evil.example.com:8080"}, 403},
		{"evil origin", nil, map[string]string{"Origin": "http://evil.example.com"}, 403},
		{"localhost origin on other port", nil, map[string]string{"Origin": "http://localhost:3000"}, 200},
		{"localhost", nil, map[string]string{"Host": "localhost"}, 200},
		{"localhost with port", nil, map[string]string{"Host": "localhost:1234", "Origin": "https://127.0.0.1:9"}, 200},
		{"ipv6 loopback", nil, map[string]string{"Host": "[::1]:1234", "Origin": "http://[::1]"}, 200},
		{"localhost lookalike", nil, map[string]string{"Host": "localhost.evil.com"}, 403},
		{"origin null", nil, map[string]string{"Origin": "null"}, 403},
		{"allowed host", &StreamableHTTPOptions{AllowedHosts: []string{"mcp.example.com"}}, map[string]string{"Host": "mcp.example.com:443"}, 200},
		{"allowed origin", &StreamableHTTPOptions{AllowedOrigins: []string{"https://app.example.com"}}, map[string]string{"Origin": "https://app.example.com"}, 200},
		{"other origin with allow list", &StreamableHTTPOptions{AllowedOrigins: []string{"https://app.example.com"}}, map[string]string{"Origin": "https://evil.example.com"}, 403},
		{"disabled", &StreamableHTTPOptions{DisableDNSRebindingProtection: true}, map[string]string{"Host": "evil.example.com", "Origin": "http://evil.example.com"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSHEnv(t, tt.opts)
			resp := e.do("POST", "", init, tt.hdr)
			body := shReadAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 403 {
				schematest.Validate(t, "JSONRPCErrorResponse", body)
				if resp.Header.Get("Mcp-Session-Id") != "" || len(e.srv.Sessions()) != 0 {
					t.Error("a refused request started a session")
				}
			}
		})
	}
}

func TestStreamableStandaloneStream(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	ss := e.srv.Sessions()[0]

	// Without a GET stream, a server-to-client request fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ss.ListRoots(ctx); !errors.Is(err, errNoStream) {
		t.Fatalf("ListRoots without a stream: %v, want errNoStream", err)
	}

	get := e.do("GET", sid, "", nil)
	if get.StatusCode != 200 || get.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET: %d %q", get.StatusCode, get.Header.Get("Content-Type"))
	}
	ch := shEvents(get.Body)
	ev, ok := shNext(t, ch)
	if !ok || !ev.hasID || ev.data != "" || ev.retry == "" {
		t.Fatalf("first GET event %+v, want priming", ev)
	}
	second := e.do("GET", sid, "", nil)
	shReadAll(t, second)
	if second.StatusCode != http.StatusConflict {
		t.Errorf("second GET: status %d, want 409", second.StatusCode)
	}

	// A list change is unrelated to any request: it goes on the GET stream.
	e.srv.AddTool(&Tool{Name: "late", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{}, nil
	})
	_, msg := shNextMessage(t, ch)
	if n, ok := msg.(*jsonrpc.Request); !ok || n.Method != NotificationToolsListChanged {
		t.Fatalf("got %+v, want tools/list_changed", msg)
	}

	// A server-to-client request travels on the GET stream and its answer
	// comes back in a POST.
	type result struct {
		r   *ListRootsResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := ss.ListRoots(ctx)
		done <- result{r, err}
	}()
	_, msg = shNextMessage(t, ch)
	req, ok := msg.(*jsonrpc.Request)
	if !ok || req.Method != MethodRootsList {
		t.Fatalf("got %+v, want roots/list", msg)
	}
	answer, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: req.ID, Result: jsontext.Value(`{"roots":[{"uri":"file:///x"}]}`)})
	resp := e.post(sid, string(answer))
	shReadAll(t, resp)
	if resp.StatusCode != 202 {
		t.Fatalf("POSTing the answer: %d", resp.StatusCode)
	}
	res := <-done
	if res.err != nil || len(res.r.Roots) != 1 || res.r.Roots[0].URI != "file:///x" {
		t.Fatalf("ListRoots: %+v, %v", res.r, res.err)
	}
}

func TestStreamableSamplingOnPOSTStream(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	resp := e.post(sid, callBody(9, "sample", ""))
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	ch := shEvents(resp.Body)
	_, msg := shNextMessage(t, ch)
	req, ok := msg.(*jsonrpc.Request)
	if !ok || req.Method != MethodSamplingCreateMessage {
		t.Fatalf("got %+v, want sampling/createMessage", msg)
	}
	answer, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: req.ID, Result: jsontext.Value(`{"role":"assistant","content":{"type":"text","text":"42"},"model":"m"}`)})
	ack := e.post(sid, string(answer))
	shReadAll(t, ack)
	if ack.StatusCode != 202 {
		t.Fatalf("answer: %d", ack.StatusCode)
	}
	_, msg = shNextMessage(t, ch)
	if got := shResultText(t, msg); got != "model said 42" {
		t.Errorf("result %q", got)
	}
	shExpectEnd(t, ch)
}

// notifyingEventStore reports the data of every event stored, so that a
// test can wait until the server has stored an event instead of sleeping.
type notifyingEventStore struct {
	EventStore
	appended chan string
}

func (s *notifyingEventStore) Append(ctx context.Context, sessionID, streamID string, seq int64, data []byte) error {
	err := s.EventStore.Append(ctx, sessionID, streamID, seq, data)
	s.appended <- string(data)
	return err
}

// waitFor returns once an event containing substr has been stored.
func (s *notifyingEventStore) waitFor(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(10 * time.Second) // only ends a broken test
	for {
		select {
		case data := <-s.appended:
			if strings.Contains(data, substr) {
				return
			}
		case <-timeout:
			t.Fatalf("no event containing %s was stored", substr)
		}
	}
}

// TestStreamableResumption covers the polling flow of SEP-1699 that the
// conformance fixture test_reconnection exercises: the handler closes its
// POST stream, the client resumes with GET and Last-Event-ID, and gets
// exactly the events of that stream it has not seen.
func TestStreamableResumption(t *testing.T) {
	events := &notifyingEventStore{EventStore: NewMemoryEventStore(nil), appended: make(chan string, 256)}
	e := newSHEnv(t, &StreamableHTTPOptions{RetryInterval: 200 * time.Millisecond, EventStore: events})
	sid := e.initialize(Version20251125)

	// The standalone stream, to check that nothing crosses streams.
	get := e.do("GET", sid, "", nil)
	gch := shEvents(get.Body)
	if ev, _ := shNext(t, gch); ev.data != "" {
		t.Fatalf("GET: first event %+v", ev)
	}

	resp := e.post(sid, callBody(11, "reconnect", "rc"))
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	ch := shEvents(resp.Body)
	var seen []shEvent
	for ev := range ch {
		seen = append(seen, ev)
	}
	// priming, progress 1, priming again (with retry) before the close.
	if len(seen) != 3 || seen[0].data != "" || !seen[0].hasID || seen[0].retry != "200" || seen[1].data == "" || seen[2].data != "" || seen[2].retry != "200" {
		t.Fatalf("POST stream events %+v", seen)
	}
	shValidateMessage(t, []byte(seen[1].data))
	lastID := seen[2].id
	if lastID != seen[1].id {
		t.Errorf("closing priming id %q, want the last event's id %q", lastID, seen[1].id)
	}

	// Meanwhile the server says something unrelated: GET stream only.
	e.srv.AddTool(&Tool{Name: "late", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{}, nil
	})
	if _, msg := shNextMessage(t, gch); msg.(*jsonrpc.Request).Method != NotificationToolsListChanged {
		t.Fatalf("GET stream got %+v", msg)
	}
	close(e.release) // the handler sends progress 2 and its result, with no connection

	// Once the result is stored (the handler is done), resuming from the
	// priming event replays everything of the stream.
	events.waitFor(t, `"closed=true"`)
	full := e.do("GET", sid, "", map[string]string{"Last-Event-ID": seen[0].id})
	if full.StatusCode != 200 {
		t.Fatalf("resume: status %d", full.StatusCode)
	}
	var got []string
	for ev := range shEvents(full.Body) {
		msg := shValidateMessage(t, []byte(ev.data))
		switch m := msg.(type) {
		case *jsonrpc.Request:
			var p ProgressNotificationParams
			json.Unmarshal(m.Params, &p)
			got = append(got, m.Method+":"+p.Message)
		case *jsonrpc.Response:
			got = append(got, "result:"+shResultText(t, m))
		}
	}
	want := []string{"notifications/progress:before", "notifications/progress:after", "result:closed=true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replay from the start: %v, want %v", got, want)
	}

	// Resuming from the last seen event replays only the rest.
	part := e.do("GET", sid, "", map[string]string{"Last-Event-ID": lastID})
	got = nil
	for ev := range shEvents(part.Body) {
		msg := shValidateMessage(t, []byte(ev.data))
		if r, ok := msg.(*jsonrpc.Response); ok {
			got = append(got, "result:"+shResultText(t, r))
		} else {
			got = append(got, msg.(*jsonrpc.Request).Method)
		}
	}
	want = []string{"notifications/progress", "result:closed=true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replay after %s: %v, want %v", lastID, got, want)
	}

	// Nothing of the POST stream leaked onto the GET stream.
	select {
	case ev, ok := <-gch:
		if ok && ev.data != "" {
			t.Errorf("GET stream got %+v", ev)
		}
	case <-time.After(100 * time.Millisecond):
	}
}

// TestStreamableResumeLive resumes a stream whose handler is still running:
// the GET replays the missed events and then carries the stream live until
// the response.
func TestStreamableResumeLive(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	resp := e.post(sid, callBody(12, "reconnect", "rc"))
	var last string
	for ev := range shEvents(resp.Body) {
		last = ev.id
	}
	get := e.do("GET", sid, "", map[string]string{"Last-Event-ID": last})
	if get.StatusCode != 200 {
		t.Fatalf("resume: %d", get.StatusCode)
	}
	ch := shEvents(get.Body)
	close(e.release)
	_, msg := shNextMessage(t, ch)
	if n, ok := msg.(*jsonrpc.Request); !ok || n.Method != NotificationProgress {
		t.Fatalf("got %+v", msg)
	}
	_, msg = shNextMessage(t, ch)
	if got := shResultText(t, msg); got != "closed=true" {
		t.Errorf("result %q", got)
	}
	shExpectEnd(t, ch)
}

func TestStreamableNoMessageOnTwoStreams(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	get := e.do("GET", sid, "", nil)
	gch := shEvents(get.Body)
	shNext(t, gch) // priming

	type streamLog struct {
		name string
		msgs []string
	}
	var mu sync.Mutex
	var logs []streamLog
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			resp := e.post(sid, callBody(200+i, "progress", "p"+strconv.Itoa(i)))
			l := streamLog{name: "post" + strconv.Itoa(i)}
			for ev := range shEvents(resp.Body) {
				if ev.data != "" {
					l.msgs = append(l.msgs, ev.data)
				}
			}
			mu.Lock()
			logs = append(logs, l)
			mu.Unlock()
		})
	}
	wg.Go(func() {
		for i := range 3 {
			e.srv.AddTool(&Tool{Name: "x" + strconv.Itoa(i), InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
				return &CallToolResult{}, nil
			})
		}
	})
	wg.Wait()
	// The three list_changed notifications are awaited however long they
	// take; then a short grace period catches a message too many (it can
	// only miss one, never fail a correct server).
	var standalone []string
	timeout := time.After(10 * time.Second)
	var grace <-chan time.Time
collect:
	for {
		if len(standalone) == 3 && grace == nil {
			grace = time.After(100 * time.Millisecond)
		}
		select {
		case ev := <-gch:
			if ev.data != "" {
				standalone = append(standalone, ev.data)
			}
		case <-grace:
			break collect
		case <-timeout:
			break collect
		}
	}
	seen := map[string]string{}
	for _, l := range append(logs, streamLog{"get", standalone}) {
		for _, m := range l.msgs {
			shValidateMessage(t, []byte(m))
			if prev, dup := seen[m]; dup && prev != l.name {
				t.Errorf("message %s on both %s and %s", m, prev, l.name)
			}
			seen[m] = l.name
			if l.name == "get" && !strings.Contains(m, "list_changed") {
				t.Errorf("GET stream got %s", m)
			}
			if l.name != "get" && !strings.Contains(m, `"p`+l.name[4:]+`"`) && !strings.Contains(m, `"result"`) {
				t.Errorf("%s got %s", l.name, m)
			}
		}
		if l.name != "get" && len(l.msgs) != 4 {
			t.Errorf("%s got %d messages, want 3 progress and a result", l.name, len(l.msgs))
		}
	}
	if len(standalone) != 3 {
		t.Errorf("GET stream got %d messages, want 3 list_changed", len(standalone))
	}
}

func TestStreamableDisconnectIsNotCancellation(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url, strings.NewReader(callBody(13, "block", "")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", shAccept)
	req.Header.Set("Mcp-Session-Id", sid)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-e.started
	cancel() // the client goes away
	<-errc
	time.Sleep(50 * time.Millisecond)
	close(e.release)
	if err := <-e.ctxErr; err != nil {
		t.Errorf("handler context: %v after a client disconnect, want nil", err)
	}
}

func TestStreamableCancellation(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	respc := make(chan *http.Response, 1)
	go func() { respc <- e.post(sid, callBody(14, "block", "")) }()
	<-e.started
	ack := e.post(sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":14,"reason":"user"}}`)
	shReadAll(t, ack)
	if ack.StatusCode != 202 {
		t.Fatalf("cancel: %d", ack.StatusCode)
	}
	if err := <-e.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler context: %v, want cancelled", err)
	}
	resp := <-respc
	body := shReadAll(t, resp)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"id":14`) {
		t.Errorf("cancelled request: status %d, body %q; want no response", resp.StatusCode, body)
	}
}

func TestStreamableSessionEndCancelsHandlers(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	respc := make(chan *http.Response, 1)
	go func() { respc <- e.post(sid, callBody(15, "block", "")) }()
	<-e.started
	del := e.do("DELETE", sid, "", nil)
	shReadAll(t, del)
	if err := <-e.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler context: %v, want cancelled", err)
	}
	resp := <-respc
	body := shReadAll(t, resp)
	if resp.StatusCode == 200 {
		// The handler's error response may still be delivered.
		shValidateResponse(t, body, "")
	}
}

// TestStreamableSessionTimeout runs in a synctest bubble, with the handler
// called in process: the idle timer and the 50ms pauses are in bubble time,
// so a loaded machine cannot stretch a pause past the timeout.
func TestStreamableSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 100 * time.Millisecond
		e := newSHEnvInProcess(t, &StreamableHTTPOptions{SessionTimeout: timeout})
		sid := e.initialize(Version20251125)
		for range 3 { // activity keeps it alive
			time.Sleep(timeout / 2)
			resp := e.post(sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
			shReadAll(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("ping on a live session: %d", resp.StatusCode)
			}
		}
		time.Sleep(timeout - time.Millisecond)
		synctest.Wait()
		if len(e.srv.Sessions()) != 1 {
			t.Fatal("session closed before it was idle for the timeout")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := len(e.srv.Sessions()); n != 0 {
			t.Errorf("%d sessions after the idle timeout", n)
		}
		resp := e.post(sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		shReadAll(t, resp)
		if resp.StatusCode != 404 {
			t.Errorf("idle session: status %d, want 404", resp.StatusCode)
		}
	})
}

func TestStreamableSessionPrincipal(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{SessionPrincipal: func(r *http.Request) string { return r.Header.Get("X-User") }})
	resp := e.do("POST", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, map[string]string{"X-User": "alice"})
	shReadAll(t, resp)
	sid := resp.Header.Get("Mcp-Session-Id")
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	for _, tt := range []struct {
		method, user string
		status       int
	}{
		{"POST", "alice", 200},
		{"POST", "mallory", 404},
		{"POST", "", 404},
		{"GET", "mallory", 404},
		{"DELETE", "mallory", 404},
		{"DELETE", "alice", 204},
	} {
		resp := e.do(tt.method, sid, ping, map[string]string{"X-User": tt.user})
		shReadAll(t, resp)
		if resp.StatusCode != tt.status {
			t.Errorf("%s by %q: status %d, want %d", tt.method, tt.user, resp.StatusCode, tt.status)
		}
	}
}

func TestStreamableStateless(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{Stateless: true})
	resp := e.post("", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	body := shReadAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("stateless tools/list: %d, session %q: %s", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), body)
	}
	shValidateResponse(t, body, "ListToolsResult")

	resp = e.post("", callBody(2, "progress", "s"))
	n := 0
	for ev := range shEvents(resp.Body) {
		if ev.hasID {
			t.Errorf("stateless event has id %q: nothing can resume it", ev.id)
		}
		if ev.data != "" {
			shValidateMessage(t, []byte(ev.data))
			n++
		}
	}
	if n != 4 {
		t.Errorf("got %d messages, want 4", n)
	}
	// Sampling needs a second POST that reaches the same session: impossible.
	resp = e.post("", callBody(3, "sample", ""))
	body = shReadAll(t, resp)
	if !strings.Contains(string(body), `"isError":true`) {
		t.Errorf("stateless sampling: %s, want a tool error", body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		resp := e.do(m, "", "", nil)
		shReadAll(t, resp)
		if resp.StatusCode != 405 {
			t.Errorf("stateless %s: %d, want 405", m, resp.StatusCode)
		}
	}
	resp = e.post("", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	shReadAll(t, resp)
	if resp.StatusCode != 202 {
		t.Errorf("stateless notification: %d", resp.StatusCode)
	}
	if n := len(e.srv.Sessions()); n != 0 {
		t.Errorf("%d sessions left behind", n)
	}
}

func TestStreamableJSONResponseMode(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{JSONResponse: true})
	sid := e.initialize(Version20251125)
	get := e.do("GET", sid, "", nil)
	gch := shEvents(get.Body)
	resp := e.do("POST", sid, callBody(4, "progress", "j"), map[string]string{"Accept": "application/json"})
	body := shReadAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	shValidateResponse(t, body, "CallToolResult")
	// The progress went to the GET stream rather than being lost.
	n := 0
	for n < 3 {
		_, msg := shNextMessage(t, gch)
		if m, ok := msg.(*jsonrpc.Request); ok && m.Method == NotificationProgress {
			n++
		}
	}
}

// TestStreamableWithClient runs our client against the handler.
func TestStreamableWithClient(t *testing.T) {
	e := newSHEnv(t, nil)
	ctx := context.Background()
	cs, err := NewClient(&Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &StreamableClientTransport{Endpoint: e.url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools.Tools) != 5 {
		t.Errorf("%d tools", len(tools.Tools))
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "progress"})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Content[0].(*TextContent); !ok || tc.Text != "done" {
		t.Errorf("result %+v", res.Content)
	}
}

// BenchmarkStreamableToolCall measures one tools/call round trip over
// Streamable HTTP (initialized session, JSON response), driven by a raw
// net/http client. The GoSDK variant serves the same tool with the official
// go-sdk, for comparison.
func BenchmarkStreamableToolCall(b *testing.B) {
	b.Run("mcpgate", func(b *testing.B) {
		srv := NewServer(&Implementation{Name: "bench", Version: "1"}, nil)
		srv.AddTool(&Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
			return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
		})
		h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, nil)
		defer h.Close()
		benchToolCall(b, h)
	})
	b.Run("gosdk", func(b *testing.B) {
		srv := gosdk.NewServer(&gosdk.Implementation{Name: "bench", Version: "1"}, nil)
		srv.AddTool(&gosdk.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: "hi"}}}, nil
		})
		benchToolCall(b, gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return srv }, nil))
	})
}

func benchToolCall(b *testing.B, h http.Handler) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	client := ts.Client()
	post := func(sid, body string) *http.Response {
		req, _ := http.NewRequest("POST", ts.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", shAccept)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", Version20250618)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := post("", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		b.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`
	if resp := post(sid, call); resp.StatusCode != 200 {
		b.Fatalf("tools/call: %d", resp.StatusCode)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if resp := post(sid, call); resp.StatusCode != 200 {
			b.Fatal(resp.StatusCode)
		}
	}
}

// BenchmarkStreamableHandlerToolCall measures the server side alone: one
// tools/call through ServeHTTP, without a network.
func BenchmarkStreamableHandlerToolCall(b *testing.B) {
	srv := NewServer(&Implementation{Name: "bench", Version: "1"}, nil)
	srv.AddTool(&Tool{Name: "echo", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(ctx context.Context, req *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}, nil
	})
	h := NewStreamableHTTPHandler(func(*http.Request) *Server { return srv }, &StreamableHTTPOptions{DisableDNSRebindingProtection: true})
	defer h.Close()
	serve := func(sid, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", shAccept)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", Version20251125)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := serve("", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`)
	sid := w.Header().Get("Mcp-Session-Id")
	serve(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`
	req := httptest.NewRequest("POST", "/mcp", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", shAccept)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", Version20251125)
	body := strings.NewReader(call)
	rw := &benchResponseWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(call)
		req.Body = io.NopCloser(body)
		req.ContentLength = int64(len(call))
		rw.reset()
		h.ServeHTTP(rw, req)
		if rw.status != 200 || rw.n == 0 {
			b.Fatalf("status %d, %d bytes", rw.status, rw.n)
		}
	}
}

// benchResponseWriter is a reusable http.ResponseWriter that discards the
// body, so that the benchmark counts the handler's allocations only.
type benchResponseWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchResponseWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}
func (w *benchResponseWriter) Header() http.Header { return w.h }
func (w *benchResponseWriter) WriteHeader(s int)   { w.status = s }
func (w *benchResponseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += len(b)
	return len(b), nil
}

func TestStreamableResumptionDisabled(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{DisableResumption: true})
	sid := e.initialize(Version20251125)
	close(e.release)
	resp := e.post(sid, callBody(5, "reconnect", "r"))
	var msgs []jsonrpc.Message
	for ev := range shEvents(resp.Body) {
		if ev.hasID || ev.retry != "" || ev.data == "" {
			t.Errorf("event %+v: without resumption events carry no id, retry or priming", ev)
			continue
		}
		msgs = append(msgs, shValidateMessage(t, []byte(ev.data)))
	}
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 2 progress and the result", len(msgs))
	}
	if got := shResultText(t, msgs[2]); got != "closed=false" {
		t.Errorf("result %q: CloseRequestStream must refuse without resumption", got)
	}
	resp = e.do("GET", sid, "", map[string]string{"Last-Event-ID": "1_0"})
	body := shReadAll(t, resp)
	if resp.StatusCode != 400 {
		t.Errorf("resume without resumption: %d, want 400", resp.StatusCode)
	}
	shCheckErrorBody(t, body, jsonrpc.CodeInvalidRequest)
}

func TestStreamableResumePurged(t *testing.T) {
	// Events larger than the store's bound are not kept: resuming past
	// them fails clearly instead of replaying nothing.
	e := newSHEnv(t, &StreamableHTTPOptions{EventStore: NewMemoryEventStore(&MemoryEventStoreOptions{MaxStreamBytes: 10})})
	sid := e.initialize(Version20251125)
	close(e.release)
	resp := e.post(sid, callBody(6, "progress", "p"))
	var first string
	for ev := range shEvents(resp.Body) {
		if first == "" {
			first = ev.id
		}
	}
	resp = e.do("GET", sid, "", map[string]string{"Last-Event-ID": first})
	body := shReadAll(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "no longer stored") {
		t.Errorf("resume past purged events: %d %s", resp.StatusCode, body)
	}
}

func TestStreamableMaxSessions(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{MaxSessions: 2})
	e.initialize(Version20251125)
	sid := e.initialize(Version20251125)
	resp := e.post("", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	body := shReadAll(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third session: %d %s", resp.StatusCode, body)
	}
	shCheckErrorBody(t, body, jsonrpc.CodeInternalError)
	shReadAll(t, e.do("DELETE", sid, "", nil))
	e.initialize(Version20251125) // room again
}

func TestStreamableKeepAlive(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{KeepAlive: 20 * time.Millisecond})
	sid := e.initialize(Version20251125)
	resp := e.do("GET", sid, "", nil)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	deadline := time.Now().Add(5 * time.Second)
	comments := 0
	for comments < 2 && time.Now().Before(deadline) {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ":") {
			comments++
		}
	}
	if comments < 2 {
		t.Errorf("got %d keep-alive comments", comments)
	}
}

func TestStreamableHandlerClose(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	get := e.do("GET", sid, "", nil)
	ch := shEvents(get.Body)
	e.h.Close()
	for {
		if _, ok := shNext(t, ch); !ok {
			break
		}
	}
	resp := e.post(sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	shReadAll(t, resp)
	if resp.StatusCode != 404 || len(e.srv.Sessions()) != 0 {
		t.Errorf("after Close: %d, %d sessions", resp.StatusCode, len(e.srv.Sessions()))
	}
}

// TestStreamableHTTP2 checks the HTTP/2 path, where a POST's connection
// cannot be taken over: CloseRequestStream then only stops writing to it,
// the response ends when the handler returns, and the client resumes.
func TestStreamableHTTP2(t *testing.T) {
	e := &shEnv{t: t}
	base := newSHEnv(t, nil)
	base.ts.Close()
	ts := httptest.NewUnstartedServer(base.h)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	*e = *base
	e.ts, e.url = ts, ts.URL
	sid := e.initialize(Version20251125)
	resp := e.post(sid, callBody(7, "progress", "h2"))
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	n := 0
	for ev := range shEvents(resp.Body) {
		if ev.data != "" {
			shValidateMessage(t, []byte(ev.data))
			n++
		}
	}
	if n != 4 {
		t.Errorf("got %d messages, want 4", n)
	}
	done := make(chan struct{})
	var events []shEvent
	go func() {
		defer close(done)
		resp := e.post(sid, callBody(8, "reconnect", "h2"))
		for ev := range shEvents(resp.Body) {
			events = append(events, ev)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	close(e.release)
	<-done
	var last string
	for _, ev := range events {
		if ev.data != "" && strings.Contains(ev.data, `"result"`) {
			t.Fatalf("the result came on the closed stream: %+v", events)
		}
		last = ev.id
	}
	get := e.do("GET", sid, "", map[string]string{"Last-Event-ID": last})
	var got []string
	for ev := range shEvents(get.Body) {
		msg := shValidateMessage(t, []byte(ev.data))
		if r, ok := msg.(*jsonrpc.Response); ok {
			got = append(got, shResultText(t, r))
		} else {
			got = append(got, msg.(*jsonrpc.Request).Method)
		}
	}
	if fmt.Sprint(got) != "[notifications/progress closed=true]" {
		t.Errorf("resumed: %v", got)
	}
}

// TestStreamableGoSDKClient runs the official go-sdk client against the
// handler: tools, progress on the POST stream, sampling, a list change on
// the GET stream, and resumption of a stream the server closed.
func TestStreamableGoSDKClient(t *testing.T) {
	e := newSHEnv(t, &StreamableHTTPOptions{RetryInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var progress []float64
	listChanged := make(chan struct{}, 4)
	client := gosdk.NewClient(&gosdk.Implementation{Name: "gosdk", Version: "1"}, &gosdk.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *gosdk.CreateMessageRequest) (*gosdk.CreateMessageResult, error) {
			return &gosdk.CreateMessageResult{Role: "assistant", Model: "m", Content: &gosdk.TextContent{Text: "42"}}, nil
		},
		ProgressNotificationHandler: func(ctx context.Context, req *gosdk.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.Progress)
			mu.Unlock()
		},
		ToolListChangedHandler: func(context.Context, *gosdk.ToolListChangedRequest) {
			listChanged <- struct{}{}
		},
	})
	// Pinned to 2025-11-25: this test exercises the legacy session (GET
	// stream, resumption); TestModernGoSDKClient covers the modern path.
	cs, err := client.Connect(ctx, &gosdk.StreamableClientTransport{Endpoint: e.url}, &gosdk.ClientSessionOptions{ProtocolVersion: Version20251125})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 5 {
		t.Fatalf("ListTools: %v, %v", tools, err)
	}
	text := func(res *gosdk.CallToolResult, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || len(res.Content) != 1 {
			t.Fatalf("result %+v", res)
		}
		return res.Content[0].(*gosdk.TextContent).Text
	}
	params := &gosdk.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	params.SetProgressToken("gp")
	if got := text(cs.CallTool(ctx, params)); got != "done" {
		t.Errorf("progress tool: %q", got)
	}
	// The go-sdk client handles notifications asynchronously: wait for
	// them (their order on the wire is checked by TestStreamableLazySSE).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= 3 {
			break
		}
	}
	mu.Lock()
	if len(progress) != 3 {
		t.Errorf("progress %v, want 3 notifications", progress)
	}
	mu.Unlock()
	if got := text(cs.CallTool(ctx, &gosdk.CallToolParams{Name: "sample", Arguments: map[string]any{}})); got != "model said 42" {
		t.Errorf("sample tool: %q", got)
	}
	// The handler closes its stream; the client resumes with GET and
	// Last-Event-ID and gets the result there.
	go func() {
		time.Sleep(200 * time.Millisecond)
		close(e.release)
	}()
	if got := text(cs.CallTool(ctx, &gosdk.CallToolParams{Name: "reconnect", Arguments: map[string]any{}})); got != "closed=true" {
		t.Errorf("reconnect tool: %q", got)
	}
	e.srv.AddTool(&Tool{Name: "late", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{}, nil
	})
	select {
	case <-listChanged:
	case <-ctx.Done():
		t.Error("no tools/list_changed on the GET stream")
	}
	if err := cs.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.srv.Sessions()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(e.srv.Sessions()); n != 0 {
		t.Errorf("%d sessions after the client's DELETE", n)
	}
}

// TestStreamableMCPGoClient runs mark3labs/mcp-go's Streamable HTTP client
// against the handler, with the version pinned and with its default, which
// first tries a newer revision and must fall back.
func TestStreamableMCPGoClient(t *testing.T) {
	for _, version := range []string{Version20251125, ""} {
		t.Run("version="+version, func(t *testing.T) {
			e := newSHEnv(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := mcpgoclient.NewStreamableHttpClient(e.url)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			var init mcpgo.InitializeRequest
			init.Params.ProtocolVersion = version
			init.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go", Version: "1"}
			res, err := c.Initialize(ctx, init)
			if err != nil {
				t.Fatalf("Initialize: %v", err)
			}
			// Unpinned, the client probes with server/discover and stays
			// modern (2026-07-28); pinned, it uses initialize.
			want := Version20251125
			if version == "" {
				want = Version20260728
			}
			if res.ProtocolVersion != want {
				t.Errorf("negotiated %q, want %q", res.ProtocolVersion, want)
			}
			var call mcpgo.CallToolRequest
			call.Params.Name = "echo"
			call.Params.Arguments = map[string]any{"x": 1}
			out, err := c.CallTool(ctx, call)
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if tc, ok := out.Content[0].(mcpgo.TextContent); !ok || tc.Text != `echo {"x":1}` {
				t.Errorf("result %+v", out.Content)
			}
		})
	}
}

// TestStreamableResumeStandalone resumes the GET stream: notifications sent
// while it was disconnected are replayed.
func TestStreamableResumeStandalone(t *testing.T) {
	e := newSHEnv(t, nil)
	sid := e.initialize(Version20251125)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	client := e.client
	if client == nil {
		client = e.ts.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := shEvents(resp.Body)
	priming, _ := shNext(t, ch)
	if !priming.hasID {
		t.Fatalf("priming %+v", priming)
	}
	cancel()
	for range ch {
	}
	// Wait until the server has noticed the disconnection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.h.mu.Lock()
		c := e.h.sessions[sid]
		e.h.mu.Unlock()
		c.standalone.mu.Lock()
		gone := c.standalone.w == nil
		c.standalone.mu.Unlock()
		if gone || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.srv.AddTool(&Tool{Name: "late", InputSchema: jsontext.Value(`{"type":"object"}`)}, func(context.Context, *CallToolRequest) (*CallToolResult, error) {
		return &CallToolResult{}, nil
	})
	// A server-to-client request cannot wait for a reconnection: it fails.
	if _, err := e.srv.Sessions()[0].ListRoots(context.Background()); !errors.Is(err, errNoStream) {
		t.Errorf("ListRoots while disconnected: %v", err)
	}
	get := e.do("GET", sid, "", map[string]string{"Last-Event-ID": priming.id})
	if get.StatusCode != 200 {
		t.Fatalf("resume: %d", get.StatusCode)
	}
	gch := shEvents(get.Body)
	ev, msg := shNextMessage(t, gch)
	if n, ok := msg.(*jsonrpc.Request); !ok || n.Method != NotificationToolsListChanged || !strings.HasPrefix(ev.id, "0_") {
		t.Fatalf("replayed %+v (%+v)", msg, ev)
	}
	// The resumed stream is the standalone stream again: live messages
	// arrive, and a second GET is refused.
	second := e.do("GET", sid, "", nil)
	shReadAll(t, second)
	if second.StatusCode != http.StatusConflict {
		t.Errorf("second GET: %d, want 409", second.StatusCode)
	}
	e.srv.RemoveTools("late")
	if _, msg := shNextMessage(t, gch); msg.(*jsonrpc.Request).Method != NotificationToolsListChanged {
		t.Errorf("live message %+v", msg)
	}
}
