// Package storetest is a conformance suite for store.Store
// implementations: every implementation runs the same Run.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Run exercises a store.Store created by open (a fresh, empty store for
// each subtest).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)

	t.Run("users", func(t *testing.T) {
		s := open(t)
		for _, n := range []string{"bob", "alice"} {
			if err := s.CreateUser(ctx, &store.User{Username: n, PasswordHash: "h-" + n, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateUser(ctx, &store.User{Username: "bob"}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate user: got %v, want ErrExists", err)
		}
		u, err := s.GetUser(ctx, "alice")
		if err != nil || u.PasswordHash != "h-alice" || !u.CreatedAt.Equal(now) {
			t.Fatalf("GetUser = %+v, %v", u, err)
		}
		list, err := s.ListUsers(ctx)
		if err != nil || len(list) != 2 || list[0].Username != "alice" || list[1].Username != "bob" {
			t.Fatalf("ListUsers = %v, %v", list, err)
		}
		if len(u.Groups) != 0 || len(u.Roles) != 0 || u.Email != "" {
			t.Fatalf("user without attributes got %+v", u)
		}
		carol := &store.User{Username: "carol", PasswordHash: "h", Groups: []string{"contractors", "eng"}, Roles: []string{"admin"}, Email: "carol@example.com", CreatedAt: now}
		if err := s.CreateUser(ctx, carol); err != nil {
			t.Fatal(err)
		}
		carol.Groups[0] = "mutated by the caller"
		u, err = s.GetUser(ctx, "carol")
		if err != nil || !slices.Equal(u.Groups, []string{"contractors", "eng"}) || !slices.Equal(u.Roles, []string{"admin"}) || u.Email != "carol@example.com" {
			t.Fatalf("GetUser(carol) = %+v, %v", u, err)
		}
		u.Roles[0] = "mutated"
		list, err = s.ListUsers(ctx)
		if err != nil || len(list) != 3 || list[2].Username != "carol" || !slices.Equal(list[2].Roles, []string{"admin"}) || list[2].Email != "carol@example.com" {
			t.Fatalf("ListUsers with attributes = %v, %v", list, err)
		}
		if err := s.DeleteUser(ctx, "carol"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted user: got %v", err)
		}
		if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete missing user: got %v", err)
		}
	})

	t.Run("clients", func(t *testing.T) {
		s := open(t)
		c := &store.Client{ID: "c1", Kind: store.ClientPreRegistered, Name: "One", SecretHash: store.Digest("s"),
			RedirectURIs: []string{"https://a.example/cb", "http://127.0.0.1/cb"}, GrantTypes: []string{"authorization_code"},
			TokenEndpointAuthMethod: "client_secret_basic", Scope: "read", JWKS: `{"keys":[]}`, CreatedAt: now}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.RedirectURIs[0] = "mutated"
		if err := s.CreateClient(ctx, c); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate client: %v", err)
		}
		got, err := s.GetClient(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.RedirectURIs[0] != "https://a.example/cb" || len(got.RedirectURIs) != 2 || got.SecretHash != store.Digest("s") || got.JWKS != `{"keys":[]}` || got.Scope != "read" {
			t.Fatalf("GetClient = %+v", got)
		}
		got.Name = "Two"
		if err := s.PutClient(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := s.PutClient(ctx, &store.Client{ID: "c0", Kind: store.ClientMetadataDocument}); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListClients(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "c0" || list[1].Name != "Two" {
			t.Fatalf("ListClients = %+v, %v", list, err)
		}
		if err := s.DeleteClient(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted client: %v", err)
		}
	})

	t.Run("client admission status and first use", func(t *testing.T) {
		s := open(t)
		c := &store.Client{ID: "https://app.example/client.json", Kind: store.ClientMetadataDocument, Name: "App",
			Status: store.ClientPending, CreatedAt: now}
		if err := s.PutClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetClient(ctx, c.ID)
		if err != nil || got.Status != store.ClientPending || !got.FirstUsedAt.IsZero() {
			t.Fatalf("new client = %+v, %v", got, err)
		}
		at := now.Add(time.Minute)
		if err := s.SetClientStatus(ctx, c.ID, store.ClientApproved, "cli:root", at); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkClientUsed(ctx, c.ID, at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkClientUsed(ctx, c.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A re-fetched document replaces the registration, never the
		// decision or the first use.
		if err := s.PutClient(ctx, &store.Client{ID: c.ID, Kind: store.ClientMetadataDocument, Name: "App v2", Status: store.ClientPending, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetClient(ctx, c.ID)
		if err != nil || got.Name != "App v2" || got.Status != store.ClientApproved || got.StatusBy != "cli:root" || !got.StatusAt.Equal(at) ||
			!got.FirstUsedAt.Equal(at.Add(time.Second)) {
			t.Fatalf("after PutClient = %+v, %v", got, err)
		}
		if err := s.SetClientStatus(ctx, "nope", store.ClientRefused, "x", at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetClientStatus(unknown) = %v", err)
		}
		if err := s.MarkClientUsed(ctx, "nope", at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("MarkClientUsed(unknown) = %v", err)
		}
	})

	t.Run("unused dynamic clients are collected", func(t *testing.T) {
		s := open(t)
		mk := func(id, kind string, created time.Time) {
			t.Helper()
			if err := s.CreateClient(ctx, &store.Client{ID: id, Kind: kind, CreatedAt: created}); err != nil {
				t.Fatal(err)
			}
		}
		old, fresh := now.Add(-48*time.Hour), now.Add(-time.Hour)
		mk("dyn-old-unused", store.ClientDynamic, old)
		mk("dyn-old-used", store.ClientDynamic, old)
		mk("dyn-old-approved", store.ClientDynamic, old)
		mk("dyn-old-refused", store.ClientDynamic, old)
		mk("dyn-fresh", store.ClientDynamic, fresh)
		mk("pre-old", store.ClientPreRegistered, old)
		if err := s.MarkClientUsed(ctx, "dyn-old-used", old.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClientStatus(ctx, "dyn-old-approved", store.ClientApproved, "admin", old); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClientStatus(ctx, "dyn-old-refused", store.ClientRefused, "admin", old); err != nil {
			t.Fatal(err)
		}
		if n, err := s.CountClients(ctx, store.ClientDynamic); err != nil || n != 5 {
			t.Fatalf("CountClients(dynamic) = %d, %v; want 5", n, err)
		}
		n, err := s.DeleteUnusedClients(ctx, store.ClientDynamic, now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("DeleteUnusedClients = %d, %v; want 2 (unused and refused)", n, err)
		}
		list, err := s.ListClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if want := []string{"dyn-fresh", "dyn-old-approved", "dyn-old-used", "pre-old"}; !slices.Equal(ids, want) {
			t.Fatalf("left %v, want %v", ids, want)
		}
		if n, err := s.CountClients(ctx, store.ClientDynamic); err != nil || n != 3 {
			t.Fatalf("CountClients(dynamic) = %d, %v; want 3", n, err)
		}
	})

	t.Run("auth codes are single use", func(t *testing.T) {
		s := open(t)
		code := &store.AuthCode{CodeHash: "h1", ClientID: "c", Subject: "u", RedirectURI: "r", CodeChallenge: "x", Resource: "https://r", Scope: "a b", FamilyID: "f", Claims: `{"groups":["g"]}`, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		// Many concurrent redemptions: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, consumed := 0, 0
		for range 8 {
			wg.Go(func() {
				c, err := s.ConsumeAuthCode(ctx, "h1", now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
					if c.Subject != "u" || c.Scope != "a b" || c.FamilyID != "f" || c.Claims != `{"groups":["g"]}` {
						t.Errorf("consumed code = %+v", c)
					}
				case errors.Is(err, store.ErrConsumed):
					consumed++
					if c == nil || c.FamilyID != "f" {
						t.Errorf("ErrConsumed without the code: %+v", c)
					}
				default:
					t.Errorf("ConsumeAuthCode: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || consumed != 7 {
			t.Fatalf("wins=%d consumed=%d, want 1 and 7", wins, consumed)
		}
		if _, err := s.ConsumeAuthCode(ctx, "nope", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
	})

	t.Run("refresh rotation and family revocation", func(t *testing.T) {
		s := open(t)
		rt := func(h string) *store.RefreshToken {
			return &store.RefreshToken{TokenHash: h, FamilyID: "fam", ClientID: "c", Subject: "u", Resource: "https://r", Scope: "a", Claims: `{"email":"u@example.com"}`, ExpiresAt: now.Add(time.Hour)}
		}
		if err := s.CreateRefreshToken(ctx, rt("r1")); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAccessToken(ctx, &store.AccessToken{ID: "at1", FamilyID: "fam", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAccessToken(ctx, &store.AccessToken{ID: "other", FamilyID: "fam2", ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		old, err := s.RotateRefreshToken(ctx, "r1", rt("r2"), now)
		if err != nil || old.TokenHash != "r1" {
			t.Fatalf("rotate: %+v, %v", old, err)
		}
		if _, err := s.RotateRefreshToken(ctx, "r1", rt("r3"), now); !errors.Is(err, store.ErrConsumed) {
			t.Fatalf("reuse: got %v, want ErrConsumed", err)
		}
		if _, err := s.GetRefreshToken(ctx, "r3"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token stored despite reuse: %v", err)
		}
		n, err := s.RevokeFamily(ctx, "fam")
		if err != nil || n != 3 {
			t.Fatalf("RevokeFamily = %d, %v; want 3 (r1, r2, at1)", n, err)
		}
		r2, _ := s.GetRefreshToken(ctx, "r2")
		if !r2.Revoked {
			t.Fatal("r2 not revoked with its family")
		}
		if r2.Claims != `{"email":"u@example.com"}` {
			t.Fatalf("refresh token claims = %q", r2.Claims)
		}
		if rev, _ := s.IsAccessTokenRevoked(ctx, "at1"); !rev {
			t.Fatal("at1 not revoked with its family")
		}
		// A revoked refresh token is not rotated (the check is part of
		// the rotation, so a refresh cannot outlive its revoked grant).
		if _, err := s.RotateRefreshToken(ctx, "r2", rt("r4"), now); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("rotating a revoked token: got %v, want ErrRevoked", err)
		}
		if _, err := s.GetRefreshToken(ctx, "r4"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token stored from a revoked one: %v", err)
		}
		if rev, _ := s.IsAccessTokenRevoked(ctx, "other"); rev {
			t.Fatal("token of another family revoked")
		}
		if rev, err := s.IsAccessTokenRevoked(ctx, "unknown"); rev || err != nil {
			t.Fatalf("unknown token: %v %v", rev, err)
		}
		if err := s.RevokeAccessToken(ctx, "other"); err != nil {
			t.Fatal(err)
		}
		if rev, _ := s.IsAccessTokenRevoked(ctx, "other"); !rev {
			t.Fatal("RevokeAccessToken had no effect")
		}
		if err := s.RevokeRefreshToken(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke unknown refresh: %v", err)
		}
	})

	t.Run("use once", func(t *testing.T) {
		s := open(t)
		if err := s.UseOnce(ctx, "iss", "j1", now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if err := s.UseOnce(ctx, "iss", "j1", now.Add(time.Minute), now); !errors.Is(err, store.ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
		if err := s.UseOnce(ctx, "other-iss", "j1", now.Add(time.Minute), now); err != nil {
			t.Fatalf("namespaces must be separate: %v", err)
		}
		// After expiry the id may be recorded again.
		if err := s.UseOnce(ctx, "iss", "j1", now.Add(3*time.Minute), now.Add(2*time.Minute)); err != nil {
			t.Fatalf("expired record: %v", err)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		s := open(t)
		if err := s.CreateSession(ctx, &store.Session{IDHash: "s1", Kind: "user", Subject: "alice", Data: "d", ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		se, err := s.GetSession(ctx, "s1", now)
		if err != nil || se.Subject != "alice" || se.Data != "d" {
			t.Fatalf("GetSession = %+v, %v", se, err)
		}
		if _, err := s.GetSession(ctx, "s1", now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		if err := s.DeleteSession(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, "s1", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted session: %v", err)
		}
	})

	t.Run("signing keys", func(t *testing.T) {
		s := open(t)
		for i := range 3 {
			if err := s.AddSigningKey(ctx, &store.SigningKey{ID: fmt.Sprint("k", i), Algorithm: "ES256", PrivateJWK: "{}", CreatedAt: now.Add(time.Duration(i) * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RetireSigningKey(ctx, "k1", now); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSigningKey(ctx, "k0"); err != nil {
			t.Fatal(err)
		}
		keys, err := s.ListSigningKeys(ctx)
		if err != nil || len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" || !keys[1].RetiredAt.Equal(now) {
			t.Fatalf("ListSigningKeys = %+v, %v", keys, err)
		}
	})

	t.Run("metadata documents keep change history", func(t *testing.T) {
		s := open(t)
		u := "https://c.example/client.json"
		d, err := s.PutMetadataDocument(ctx, &store.MetadataDocument{URL: u, Body: "a", Digest: store.Digest("a"), FetchedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil || d.PreviousDigest != "" || !d.ChangedAt.IsZero() {
			t.Fatalf("first put = %+v, %v", d, err)
		}
		d, _ = s.PutMetadataDocument(ctx, &store.MetadataDocument{URL: u, Body: "a", Digest: store.Digest("a"), FetchedAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)})
		if d.PreviousDigest != "" {
			t.Fatalf("unchanged document flagged as changed: %+v", d)
		}
		later := now.Add(2 * time.Minute)
		d, _ = s.PutMetadataDocument(ctx, &store.MetadataDocument{URL: u, Body: "b", Digest: store.Digest("b"), FetchedAt: later, ExpiresAt: now.Add(time.Hour)})
		if d.PreviousDigest != store.Digest("a") || !d.ChangedAt.Equal(later) {
			t.Fatalf("changed document = %+v", d)
		}
		got, err := s.GetMetadataDocument(ctx, u)
		if err != nil || got.Body != "b" || got.PreviousDigest != store.Digest("a") || !got.ChangedAt.Equal(later) {
			t.Fatalf("GetMetadataDocument = %+v, %v", got, err)
		}
	})

	t.Run("delete expired", func(t *testing.T) {
		s := open(t)
		_ = s.CreateAuthCode(ctx, &store.AuthCode{CodeHash: "old", ExpiresAt: now.Add(-time.Second)})
		_ = s.CreateAuthCode(ctx, &store.AuthCode{CodeHash: "new", ExpiresAt: now.Add(time.Hour)})
		_ = s.UseOnce(ctx, "n", "old", now.Add(-time.Second), now.Add(-time.Minute))
		_ = s.CreateSession(ctx, &store.Session{IDHash: "old", ExpiresAt: now.Add(-time.Second)})
		n, err := s.DeleteExpired(ctx, now)
		if err != nil || n != 3 {
			t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
		}
		if _, err := s.ConsumeAuthCode(ctx, "new", now); err != nil {
			t.Fatalf("live code removed: %v", err)
		}
	})
}
