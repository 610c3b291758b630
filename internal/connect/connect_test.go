package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
)

// pipeHost starts Run on pipes and connects an MCP client to it as a
// stdio host would; stop closes the client and returns Run's error.
func pipeHost(ctx context.Context, t *testing.T, o Options, client *mcp.Client) (*mcp.ClientSession, func() error, error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	o.Stdin, o.Stdout, o.Stderr = inR, outW, io.Discard
	o.Logger = slog.New(slog.DiscardHandler)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, &o) }()
	stop := func() error {
		inW.Close()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("Run did not return after stdin was closed")
		}
	}
	if client == nil {
		client = mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, nil)
	}
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		return nil, stop, err
	}
	return cs, func() error { cs.Close(); return stop() }, nil
}

// TestRelayServerRequests: the server's own requests (sampling,
// elicitation, roots) reach the host through the relay and their answers
// go back; requests after initialization carry MCP-Protocol-Version.
func TestRelayServerRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := mcp.NewServer(&mcp.Implementation{Name: "remote", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: mcp.RoleUser, Content: []mcp.Content{&mcp.TextContent{Text: "hi"}}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, err
		}
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "who?", RequestedSchema: &mcp.ElicitationSchema{
			Type: "object", Properties: map[string]mcp.PrimitiveSchemaDefinition{"name": {Type: "string"}},
		}})
		if err != nil {
			return nil, err
		}
		roots, err := req.Session.ListRoots(ctx)
		if err != nil {
			return nil, err
		}
		text := msg.Content[0].(*mcp.TextContent).Text
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("%s|%v|%s", text, el.Content["name"], roots.Roots[0].URI)}}}, nil
	})
	var mu sync.Mutex
	versions := map[string]bool{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		versions[r.Header.Get("Mcp-Protocol-Version")] = true
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	c := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: mcp.RoleAssistant, Model: "m", Content: []mcp.Content{&mcp.TextContent{Text: "sampled"}}}, nil
		},
		ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"name": "ann"}}, nil
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///tmp", Name: "tmp"})
	// A static Authorization header: no OAuth.
	cs, stop, err := pipeHost(ctx, t, Options{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer static"}}}, c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "sampled|ann|file:///tmp" {
		t.Errorf("tool result %q", got)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !versions[mcp.LatestProtocolVersion] {
		t.Errorf("protocol version headers seen: %v, want %s after initialization", versions, mcp.LatestProtocolVersion)
	}
}

// TestRemoteUnreachable: a request the relay cannot deliver is answered
// with an error instead of hanging the host.
func TestRemoteUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, stop, err := pipeHost(ctx, t, Options{URL: "http://" + addr + "/mcp", Header: http.Header{"Authorization": {"Bearer x"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "could not be reached") {
		t.Errorf("initialize against a closed port: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, u := range []string{"", "ftp://h/mcp", "/mcp", "http://h/mcp#x", "http://u:p@h/mcp"} {
		if err := Run(context.Background(), &Options{URL: u, Stdin: io.NopCloser(strings.NewReader("")), Stderr: io.Discard}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	p, err := DefaultTokenFile("http://127.0.0.1:8080/mcp")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("mcpgate", "tokens", "127.0.0.1_8080.json"); !strings.HasSuffix(p, want) {
		t.Errorf("DefaultTokenFile = %s, want …/%s", p, want)
	}
}

// TestRelayPipelined: a host that writes its messages without waiting
// for the initialize result is served, since initialize is sent first.
func TestRelayPipelined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := mcp.NewServer(&mcp.Implementation{Name: "remote", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "hello"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello back"}}}, nil
	})
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer srv.Close()
	in := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hello","arguments":{}}}`,
	}, "\n") + "\n"
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Options{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer x"}}, Stdin: inR, Stdout: outW,
			Stderr: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	}()
	go inW.Write([]byte(in))
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := outR.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := strings.IndexByte(string(buf), '\n')
				if i < 0 {
					break
				}
				lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	var got []string
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stdout closed after %q", got)
			}
			got = append(got, l)
		case <-ctx.Done():
			t.Fatalf("responses so far: %q", got)
		}
	}
	if !strings.Contains(got[0], `"id":1`) || !strings.Contains(got[0], `"protocolVersion"`) || !strings.Contains(got[1], "hello back") {
		t.Errorf("responses %q", got)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRelaySessionExpired: when the remote forgets the session (404), the
// relay starts a new one with the host's initialize request, and the
// host's next requests work without a new handshake on its side.
func TestRelaySessionExpired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := mcp.NewServer(&mcp.Implementation{Name: "remote", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "hello"}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello back"}}}, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	var mu sync.Mutex
	var forgotten, sessions []string
	inits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.Header.Get("Mcp-Session-Id")
		mu.Lock()
		gone := sid != "" && slices.Contains(forgotten, sid)
		mu.Unlock()
		if gone {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		rec := &headerWatch{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if id := rec.Header().Get("Mcp-Session-Id"); id != "" && sid == "" {
			mu.Lock()
			sessions = append(sessions, id)
			inits++
			mu.Unlock()
		}
	}))
	defer srv.Close()

	cs, stop, err := pipeHost(ctx, t, Options{URL: srv.URL, Header: http.Header{"Authorization": {"Bearer x"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	call := func() error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "hello"})
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	forgotten = append(forgotten, sessions...)
	mu.Unlock()
	// The first call after expiry may fail (it met the expired session);
	// the relay starts a new session and later calls succeed.
	deadline := time.Now().Add(30 * time.Second)
	for err := call(); err != nil; err = call() {
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail after the session expired: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	n := inits
	mu.Unlock()
	if n != 2 {
		t.Errorf("%d sessions initialized, want 2", n)
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// headerWatch lets a test read the response headers a handler set.
type headerWatch struct{ http.ResponseWriter }

func (h *headerWatch) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// TestSignInBounded: a sign-in the user never completes fails after the
// timeout with an error that says so.
func TestSignInBounded(t *testing.T) {
	never := oauthclient.AuthorizationCodeHandlerFunc(func(ctx context.Context, _ *oauthclient.AuthorizationRequest) (*oauthclient.AuthorizationResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, err := boundedSignIn(never, 10*time.Millisecond).HandleAuthorization(context.Background(), &oauthclient.AuthorizationRequest{})
	if err == nil || !strings.Contains(err.Error(), "not completed within 10ms") {
		t.Errorf("err = %v", err)
	}
	// The caller's own cancellation is passed on as it is.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := boundedSignIn(never, time.Hour).HandleAuthorization(ctx, &oauthclient.AuthorizationRequest{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
