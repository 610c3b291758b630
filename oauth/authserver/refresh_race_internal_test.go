package authserver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// hookStore calls at(op) before the token operations of a refresh
// ("get", "record", "rotate") and after the rotation ("rotated"), so that
// a test can land a revocation at each point of a refresh.
type hookStore struct {
	store.Store
	mu sync.Mutex
	at func(op string)
}

func (h *hookStore) hook(op string) {
	h.mu.Lock()
	f := h.at
	h.mu.Unlock()
	if f != nil {
		f(op)
	}
}

func (h *hookStore) GetRefreshToken(ctx context.Context, hash string) (*store.RefreshToken, error) {
	h.hook("get")
	return h.Store.GetRefreshToken(ctx, hash)
}

func (h *hookStore) RecordAccessToken(ctx context.Context, t *store.AccessToken) error {
	h.hook("record")
	return h.Store.RecordAccessToken(ctx, t)
}

func (h *hookStore) RotateRefreshToken(ctx context.Context, old string, next *store.RefreshToken, now time.Time) (*store.RefreshToken, error) {
	h.hook("rotate")
	t, err := h.Store.RotateRefreshToken(ctx, old, next, now)
	h.hook("rotated")
	return t, err
}

// raceServer is an authorization server on st (wrapped in a hookStore)
// with a public client "pub" holding refresh tokens.
func raceServer(t *testing.T, st store.Store) (*Server, *hookStore) {
	t.Helper()
	ctx := context.Background()
	hs := &hookStore{Store: st}
	s, err := New(ctx, "https://as.example.test", hs, &Options{
		Resources: []Resource{{URI: "https://mcp.example.test/mcp", Scopes: []string{"mcp"}}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, &store.Client{ID: "pub", Kind: store.ClientPreRegistered, TokenEndpointAuthMethod: meta.AuthMethodNone,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return s, hs
}

// seedGrant stores a refresh token of a new grant family and returns the
// token and the family.
func seedGrant(t *testing.T, st store.Store, i int) (string, string) {
	t.Helper()
	rt, family := meta.RandomToken(32), fmt.Sprintf("family-%d", i)
	if err := st.CreateRefreshToken(context.Background(), &store.RefreshToken{TokenHash: store.Digest(rt), FamilyID: family, ClientID: "pub",
		Subject: "alice", Resource: "https://mcp.example.test/mcp", Scope: "mcp", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return rt, family
}

// noLiveToken checks that no access or refresh token of family is live
// in st, and that a refresh token the refresh returned mints nothing.
func noLiveToken(t *testing.T, s *Server, st store.Store, family string, resp *meta.TokenResponse) {
	t.Helper()
	ctx := context.Background()
	gl := st.(store.GrantLister)
	ats, err := gl.ListAccessTokens(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range ats {
		if at.FamilyID == family {
			t.Errorf("access token %s of the revoked grant %s is live", at.ID, family)
		}
	}
	rts, err := gl.ListRefreshTokens(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range rts {
		if rt.FamilyID == family {
			t.Errorf("a refresh token of the revoked grant %s is live", family)
		}
	}
	if resp != nil && resp.RefreshToken != "" {
		if _, err := s.token(ctx, &TokenRequest{GrantType: meta.GrantTypeRefreshToken, ClientID: "pub", RefreshToken: resp.RefreshToken}); err == nil {
			t.Errorf("the refresh token issued while grant %s was revoked mints tokens", family)
		}
	}
}

func raceStores(t *testing.T) []struct {
	name string
	st   store.Store
} {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "race.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return []struct {
		name string
		st   store.Store
	}{{"memory", store.NewMemory()}, {"sqlite", db}}
}

// TestRefreshRacesGrantRevocation: a revocation of the grant (its family
// revoked, as `mcpgate revoke grant` does) landing at any point of a
// refresh leaves no live token of the grant: either the refresh is
// refused, or what it issued is revoked with the rest.
func TestRefreshRacesGrantRevocation(t *testing.T) {
	for _, k := range raceStores(t) {
		t.Run(k.name, func(t *testing.T) {
			s, hs := raceServer(t, k.st)
			ctx := context.Background()
			// Deterministic: the revocation at each point of the refresh.
			for i, point := range []string{"get", "record", "rotate", "rotated"} {
				t.Run("revoked at "+point, func(t *testing.T) {
					rt, family := seedGrant(t, k.st, i)
					var once sync.Once
					hs.mu.Lock()
					hs.at = func(op string) {
						if op == point {
							once.Do(func() {
								if _, err := k.st.RevokeFamily(ctx, family); err != nil {
									t.Error(err)
								}
							})
						}
					}
					hs.mu.Unlock()
					resp, err := s.token(ctx, &TokenRequest{GrantType: meta.GrantTypeRefreshToken, ClientID: "pub", RefreshToken: rt})
					hs.mu.Lock()
					hs.at = nil
					hs.mu.Unlock()
					// Before the rotation the refresh must be refused;
					// after it, what it issued is revoked.
					if point != "rotated" && err == nil {
						t.Errorf("the refresh succeeded although its grant was revoked at %q", point)
					}
					if err != nil {
						t.Logf("refused: %v", err)
					}
					noLiveToken(t, s, k.st, family, resp)
				})
			}
			// Concurrent: many refreshes each racing the revocation of
			// their grant, with no interleaving forced.
			n := 200
			if k.name == "sqlite" {
				n = 60
			}
			ok, refused := 0, 0
			for i := range n {
				rt, family := seedGrant(t, k.st, 100+i)
				var wg sync.WaitGroup
				var resp *meta.TokenResponse
				var rerr error
				start := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					resp, rerr = s.token(ctx, &TokenRequest{GrantType: meta.GrantTypeRefreshToken, ClientID: "pub", RefreshToken: rt})
				}()
				go func() {
					defer wg.Done()
					<-start
					if _, err := k.st.RevokeFamily(ctx, family); err != nil {
						t.Error(err)
					}
				}()
				close(start)
				wg.Wait()
				if rerr == nil {
					ok++
				} else {
					refused++
				}
				noLiveToken(t, s, k.st, family, resp)
				if t.Failed() {
					return
				}
			}
			t.Logf("%d races: %d refreshes refused, %d issued and then revoked with their grant; no live token left", n, refused, ok)
		})
	}
}
