package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/gateway/upstreamauth"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/store"
)

// revocationLog wraps an authorization server: it records the RFC 7009
// revocation requests it receives, and with hideEndpoint it removes
// revocation_endpoint from the server's metadata (an authorization server
// that offers no revocation).
type revocationLog struct {
	hideEndpoint bool
	mu           sync.Mutex
	requests     []url.Values
}

func (l *revocationLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/revoke"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			l.mu.Lock()
			l.requests = append(l.requests, form)
			l.mu.Unlock()
		case l.hideEndpoint && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/.well-known/"):
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var m map[string]jsontext.Value
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			}
			delete(m, "revocation_endpoint")
			delete(m, "revocation_endpoint_auth_methods_supported")
			b, _ := json.Marshal(m)
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (l *revocationLog) got() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]url.Values(nil), l.requests...)
}

// TestRevokeUpstreamCredentialPerUser: `revoke upstream-credential
// files/alice` for a per-user (oauth_user) upstream revokes alice's grant
// at the upstream's authorization server (RFC 7009) when it offers a
// revocation endpoint, and says in the revocation's notes (audit record,
// applied note) that it could not when it does not; in both cases the
// sealed token is deleted, alice's upstream session ends, and her next
// call gets the URL elicitation (-32042) again. Bob keeps his.
func TestRevokeUpstreamCredentialPerUser(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint bool
	}{{"with revocation endpoint", true}, {"without revocation endpoint", false}} {
		t.Run(tc.name, func(t *testing.T) {
			log := &revocationLog{hideEndpoint: !tc.endpoint}
			up := newProtectedUpstreamWith(t, time.Hour, log.wrap)
			gwLn, gwBase := listen(t)
			dataDir := t.TempDir()
			cfg := &config.Config{Auth: config.AuthOAuth, PublicURL: gwBase, DataDir: dataDir, Upstreams: []config.Upstream{{
				Name: "files", URL: up.url, Credentials: &config.Credentials{Type: config.CredentialsOAuthUser, Scopes: []string{"files:read"}},
			}}}
			db := openDataDir(t, dataDir)
			var evMu sync.Mutex
			var events []inventory.Event
			rv, err := inventory.NewRevoker(context.Background(), db, &inventory.RevokerOptions{
				Hooks:       inventory.RevocationHooks{RevokeTokens: inventory.StoreTokenRevoker(db, nil)},
				MarkApplied: true,
				OnEvent: func(e inventory.Event) {
					evMu.Lock()
					events = append(events, e)
					evMu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			g, err := New(cfg, withAuth(t, cfg, db, &Options{UpstreamTokens: db, UpstreamTokenKey: datadir.UpstreamTokenKey(dataDir), Revoker: rv}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			addUser(t, db, "alice", "alice-gateway-pw")
			addUser(t, db, "bob", "bob-gateway-pw")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.Start(ctx); err != nil {
				t.Fatal(err)
			}
			serve(t, gwLn, g.Handler())
			gwMCP := gwBase + "/mcp"

			// Alice and bob authorize the gateway at the upstream.
			users := map[string]*user{}
			for _, u := range []struct{ name, pw, upName, upPW string }{
				{"alice", "alice-gateway-pw", "up-alice", "alice-upstream-pw"},
				{"bob", "bob-gateway-pw", "up-bob", "bob-upstream-pw"},
			} {
				usr := signIn(t, gwMCP, u.name, u.pw, u.upName, u.upPW)
				_, err := usr.call("files_whoami")
				e := mustElicit(t, u.name, err)
				if status, last, page := usr.browser.visit(e.URL, ""); status != http.StatusOK {
					t.Fatalf("%s authorizing: HTTP %d at %s\n%s", u.name, status, last, page)
				}
				usr.waitComplete(t, e.ElicitationID)
				if got, err := usr.call("files_whoami"); err != nil || got != "files" {
					t.Fatalf("%s after authorizing: %q %v", u.name, got, err)
				}
				users[u.name] = usr
			}
			sealer := upstreamauth.NewSealer(datadir.UpstreamTokenKey(dataDir))
			rec, err := db.GetUpstreamToken(ctx, "alice", "files")
			if err != nil {
				t.Fatal(err)
			}
			tk, err := sealer.Open("alice", "files", rec.Ciphertext)
			if err != nil || tk.RefreshToken == "" || tk.AccessToken == "" {
				t.Fatalf("alice's upstream token: %v %v", tk, err)
			}
			connected := func(principal string) bool {
				for _, s := range g.UpstreamSessions() {
					if s.Principal == principal && s.Upstream == "files" && s.Connected {
						return true
					}
				}
				return false
			}
			if !connected("alice") || !connected("bob") {
				t.Fatalf("upstream sessions before the revocation: %+v", g.UpstreamSessions())
			}

			start := time.Now()
			res, err := rv.Revoke(ctx, store.RevokeUpstreamCredential, "files/alice", "admin")
			took := time.Since(start)
			if err != nil {
				t.Fatalf("revoke: %v\n%s", err, res.Summary())
			}
			t.Logf("revoke upstream-credential took %.1f ms\n%s", float64(took.Microseconds())/1000, res.Summary())
			if took >= time.Second {
				t.Errorf("the revocation took %s, want less than 1s", took)
			}
			notes := strings.Join(res.Notes(), "\n")
			reqs := log.got()
			if tc.endpoint {
				var hints []string
				for _, r := range reqs {
					switch r.Get("token") {
					case tk.RefreshToken:
						hints = append(hints, "refresh_token")
					case tk.AccessToken:
						hints = append(hints, "access_token")
					default:
						t.Errorf("revocation of an unknown token (hint %q)", r.Get("token_type_hint"))
					}
				}
				if strings.Join(hints, ",") != "refresh_token,access_token" {
					t.Errorf("the upstream's authorization server received revocations of %v, want alice's refresh then access token", hints)
				}
				if !strings.Contains(notes, "revoked at the upstream's authorization server (RFC 7009)") {
					t.Errorf("notes %q do not say the grant was revoked at the upstream", notes)
				}
				// The upstream's authorization server really revoked them.
				if rt, err := up.st.GetRefreshToken(ctx, store.Digest(tk.RefreshToken)); err != nil || !rt.Revoked {
					t.Errorf("alice's refresh token at the upstream: %+v %v, want revoked", rt, err)
				}
				if code := bearerStatus(t, up.url, tk.AccessToken); code != http.StatusUnauthorized {
					t.Errorf("alice's old upstream access token is answered %d by the upstream, want 401", code)
				}
			} else {
				if len(reqs) != 0 {
					t.Errorf("%d revocation requests to a server that offers none", len(reqs))
				}
				if !strings.Contains(notes, "could not be revoked") || !strings.Contains(notes, "no revocation endpoint") {
					t.Errorf("notes %q do not say the grant could not be revoked at the upstream", notes)
				}
				// Which is the truth: the grant is live there.
				if rt, err := up.st.GetRefreshToken(ctx, store.Digest(tk.RefreshToken)); err != nil || rt.Revoked {
					t.Errorf("alice's refresh token at the upstream: %+v %v, want still live", rt, err)
				}
			}
			// The audit event and the applied note carry the notes.
			evMu.Lock()
			var detail string
			for _, e := range events {
				if e.Kind == inventory.EventRevoked {
					detail = e.Detail
				}
			}
			evMu.Unlock()
			wantNote := "revoked at the upstream's authorization server"
			if !tc.endpoint {
				wantNote = "could not be revoked"
			}
			if !strings.Contains(detail, wantNote) {
				t.Errorf("revocation event (audited) %q lacks %q", detail, wantNote)
			}
			revs, err := db.ListRevocations(ctx)
			if err != nil || len(revs) != 1 || !strings.Contains(revs[0].AppliedNote, wantNote) {
				t.Errorf("stored revocations %+v %v, want the applied note to say %q", revs, err, wantNote)
			}

			// The sealed token is gone, alice's upstream session ended,
			// bob's kept.
			if _, err := db.GetUpstreamToken(ctx, "alice", "files"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("alice's sealed token after the revocation: %v, want not found", err)
			}
			if connected("alice") {
				t.Error("alice's upstream session survived the revocation")
			}
			if !connected("bob") {
				t.Error("bob's upstream session was closed")
			}
			if _, err := db.GetUpstreamToken(ctx, "bob", "files"); err != nil {
				t.Errorf("bob's sealed token: %v", err)
			}
			if got, err := users["bob"].call("files_whoami"); err != nil || got != "files" {
				t.Errorf("bob after alice's revocation: %q %v", got, err)
			}
			// Alice must authorize again.
			_, err = users["alice"].call("files_whoami")
			mustElicit(t, "alice after the revocation", err)
		})
	}
}

// bearerStatus sends an MCP initialize request with token to u and
// returns the HTTP status.
func bearerStatus(t *testing.T, u, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
