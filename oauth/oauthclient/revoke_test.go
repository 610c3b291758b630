package oauthclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// revocationServer records the RFC 7009 requests it gets and answers
// each with status (and body, if any).
type revocationServer struct {
	mu       sync.Mutex
	requests []revocationRequest
}

type revocationRequest struct {
	token, hint, clientID, basicID, basicSecret string
}

func (rs *revocationServer) start(t *testing.T, status int, body string) *meta.AuthorizationServerMetadata {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		rs.mu.Lock()
		rs.requests = append(rs.requests, revocationRequest{token: r.PostForm.Get("token"), hint: r.PostForm.Get("token_type_hint"),
			clientID: r.PostForm.Get("client_id"), basicID: id, basicSecret: secret})
		rs.mu.Unlock()
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return &meta.AuthorizationServerMetadata{Issuer: srv.URL, TokenEndpoint: srv.URL + "/token", RevocationEndpoint: srv.URL + "/revoke",
		TokenEndpointAuthMethodsSupported: []string{meta.AuthMethodClientSecretBasic, meta.AuthMethodNone}}
}

func (rs *revocationServer) got() []revocationRequest {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]revocationRequest(nil), rs.requests...)
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	tok := &Token{AccessToken: "at-1", RefreshToken: "rt-1", ClientID: "gw"}

	t.Run("success, refresh token first, public client", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusOK, "")
		if err := Revoke(ctx, nil, nil, tok, as); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		got := rs.got()
		want := []revocationRequest{{token: "rt-1", hint: "refresh_token", clientID: "gw"}, {token: "at-1", hint: "access_token", clientID: "gw"}}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("requests %+v, want %+v", got, want)
		}
	})

	t.Run("success, confidential client, access token only", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusOK, "")
		client := &ClientAuth{ClientID: "gw", ClientSecret: "s3cret", Method: meta.AuthMethodClientSecretBasic}
		if err := Revoke(ctx, nil, client, &Token{AccessToken: "at-2", ClientID: "gw"}, as); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		got := rs.got()
		if len(got) != 1 || got[0].token != "at-2" || got[0].hint != "access_token" || got[0].basicID != "gw" || got[0].basicSecret != "s3cret" {
			t.Errorf("requests %+v, want one for at-2 with basic authentication", got)
		}
	})

	t.Run("4xx", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusUnauthorized, `{"error":"invalid_client","error_description":"who are you"}`)
		err := Revoke(ctx, nil, nil, tok, as)
		var oe *meta.Error
		if !errors.As(err, &oe) || oe.Code != meta.ErrInvalidClient || !strings.Contains(err.Error(), "revoking the refresh token") {
			t.Fatalf("Revoke: %v, want invalid_client naming the refresh token", err)
		}
		if n := len(rs.got()); n != 2 {
			t.Errorf("%d requests, want both tokens tried", n)
		}
	})

	t.Run("unsupported token type", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusBadRequest, `{"error":"unsupported_token_type"}`)
		err := Revoke(ctx, nil, nil, &Token{RefreshToken: "rt-3", ClientID: "gw"}, as)
		if err == nil || !strings.Contains(err.Error(), "unsupported_token_type") {
			t.Fatalf("Revoke: %v, want unsupported_token_type", err)
		}
	})

	t.Run("5xx", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusServiceUnavailable, "down for maintenance")
		err := Revoke(ctx, nil, nil, tok, as)
		if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("Revoke: %v, want an HTTP 503 error", err)
		}
	})

	t.Run("no endpoint", func(t *testing.T) {
		as := &meta.AuthorizationServerMetadata{Issuer: "https://as.example.test", TokenEndpoint: "https://as.example.test/token"}
		if err := Revoke(ctx, nil, nil, tok, as); !errors.Is(err, ErrNoRevocationEndpoint) {
			t.Fatalf("Revoke: %v, want ErrNoRevocationEndpoint", err)
		}
		if err := Revoke(ctx, nil, nil, tok, nil); !errors.Is(err, ErrNoRevocationEndpoint) {
			t.Fatalf("Revoke without metadata: %v, want ErrNoRevocationEndpoint", err)
		}
	})

	t.Run("no token", func(t *testing.T) {
		rs := &revocationServer{}
		as := rs.start(t, http.StatusOK, "")
		if err := Revoke(ctx, nil, nil, &Token{ClientID: "gw"}, as); err == nil {
			t.Fatal("Revoke of an empty token succeeded")
		}
		if n := len(rs.got()); n != 0 {
			t.Errorf("%d requests for an empty token", n)
		}
	})

	t.Run("timeout bounded", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		as := &meta.AuthorizationServerMetadata{Issuer: srv.URL, RevocationEndpoint: srv.URL + "/revoke"}
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := Revoke(cctx, nil, nil, tok, as)
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Revoke against a hanging server: %v, want the context's deadline", err)
		}
		// Both tokens are tried, each cut off by the same deadline.
		if took > time.Second {
			t.Errorf("Revoke took %s with a 200ms deadline", took)
		}
		t.Logf("hanging server: gave up after %s", took.Round(time.Millisecond))
	})
}
