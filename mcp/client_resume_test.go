package mcp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// noListenClient is an HTTP client that refuses the listening GET stream,
// so that an abandoned connection leaves no request open at the server.
func noListenClient() *http.Client {
	return &http.Client{Transport: ctRoundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodGet {
			return &http.Response{StatusCode: http.StatusMethodNotAllowed, Status: "405 Method Not Allowed", Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

func TestClientResume(t *testing.T) {
	server := ctE2EServer()
	srv := httptest.NewServer(NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	first, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL, HTTPClient: noListenClient()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := first.State()
	if st.SessionID == "" || st.ProtocolVersion == "" || st.InitializeResult == nil {
		t.Fatalf("State() = %+v", st)
	}
	// The first client is abandoned without ending the session (as a
	// process that died would); a new one takes the session over.
	other := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	cs, err := other.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL, HTTPClient: noListenClient()}, &ClientSessionOptions{Resume: st})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	defer cs.Close()
	if cs.ID() != st.SessionID {
		t.Errorf("resumed session id = %q, want %q", cs.ID(), st.SessionID)
	}
	if cs.ProtocolVersion() != st.ProtocolVersion {
		t.Errorf("protocol version = %q, want %q", cs.ProtocolVersion(), st.ProtocolVersion)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "s" {
		t.Errorf("server name = %q", got)
	}
	res, err := cs.CallTool(ctx, &CallToolParams{Name: "echo"})
	if err != nil {
		t.Fatalf("CallTool on the resumed session: %v", err)
	}
	ctTextOf(t, res)
	if cs.ID() != st.SessionID {
		t.Errorf("session id changed to %q", cs.ID())
	}
}

func TestClientResumeExpired(t *testing.T) {
	server := ctE2EServer()
	var inits atomic.Int32
	handler := NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
			inits.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	st := &ClientSessionState{SessionID: "no-such-session", ProtocolVersion: Version20251125, InitializeResult: &InitializeResult{ProtocolVersion: Version20251125}}
	_, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL, HTTPClient: noListenClient()}, &ClientSessionOptions{Resume: st})
	if !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("resume of an unknown session: err = %v, want ErrSessionExpired", err)
	}
	if n := inits.Load(); n != 0 {
		t.Errorf("%d initialize requests: want none (no silent re-initialize)", n)
	}
}

func TestClientResumeBadState(t *testing.T) {
	ctx := context.Background()
	client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
	for _, st := range []*ClientSessionState{
		{ProtocolVersion: Version20251125, InitializeResult: &InitializeResult{}},
		{SessionID: "x", ProtocolVersion: Version20251125},
		{SessionID: "x", ProtocolVersion: "1999-01-01", InitializeResult: &InitializeResult{}},
		{SessionID: "bad id", ProtocolVersion: Version20251125, InitializeResult: &InitializeResult{}},
	} {
		if _, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: "http://127.0.0.1:1/"}, &ClientSessionOptions{Resume: st}); err == nil {
			t.Errorf("resume %+v: no error", st)
		}
	}
}

// TestClientDetach: a detached session stays at the server and can be
// resumed; a closed one is ended (DELETE) and cannot.
func TestClientDetach(t *testing.T) {
	server := ctE2EServer()
	srv := httptest.NewServer(NewStreamableHTTPHandler(func(*http.Request) *Server { return server }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, detach := range []bool{true, false} {
		client := NewClient(&Implementation{Name: "c", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &AutoClientTransport{Endpoint: srv.URL, HTTPClient: noListenClient()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := cs.State()
		if detach {
			cs.Detach()
		} else {
			cs.Close()
		}
		resumed, err := client.Connect(ctx, &StreamableClientTransport{Endpoint: srv.URL, HTTPClient: noListenClient()}, &ClientSessionOptions{Resume: st})
		switch {
		case detach && err != nil:
			t.Errorf("resume after Detach: %v", err)
		case !detach && !errors.Is(err, ErrSessionExpired):
			t.Errorf("resume after Close: err = %v, want ErrSessionExpired", err)
		}
		if resumed != nil {
			resumed.Close()
		}
	}
}
