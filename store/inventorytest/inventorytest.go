// Package inventorytest is a conformance suite for store.InventoryStore
// and store.GrantLister implementations.
package inventorytest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Stores is what a factory returns: the identity store (which must also
// implement store.GrantLister) and the inventory store, possibly the same
// value.
type Stores struct {
	Identity  store.Store
	Inventory store.InventoryStore
}

// Run runs the suite; open returns fresh, empty stores for each subtest.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Stores)
	}{
		{"ClientRecords", testClientRecords},
		{"ToolRecords", testToolRecords},
		{"UpstreamCredentials", testUpstreamCredentials},
		{"IdentityProviders", testIdentityProviders},
		{"Revocations", testRevocations},
		{"GrantLister", testGrantLister},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// at is a time with nanoseconds, to check times survive exactly.
func at(sec int) time.Time { return time.Unix(int64(1_800_000_000+sec), 123456789) }

func testClientRecords(t *testing.T, s Stores) {
	ctx := context.Background()
	st := s.Inventory
	if _, err := st.GetClientRecord(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetClientRecord(unknown) = %v, want ErrNotFound", err)
	}
	full := &store.ClientRecord{
		ClientID: "https://app.example/cimd.json", Metadata: `{"client_id":"x"}`, MetadataDigest: "d1",
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb"}, KeyThumbprints: []string{"tp1"}, JWKSURI: "https://app.example/jwks",
		ApprovedRedirectURIs: []string{"https://app.example/cb"}, ApprovedKeyThumbprints: []string{"tp0"}, ApprovedJWKSURI: "https://app.example/old",
		Changed: true, ChangedAt: at(3), ApprovedAt: at(2), ApprovedBy: "admin", FirstSeen: at(1), LastSeen: at(4),
		DocumentDigest: "c1", ApprovedDocumentDigest: "c0", RemoteKeysURI: "https://app.example/jwks",
		RemoteKeyThumbprints: []string{"rk2", "rk3"}, ApprovedRemoteKeyThumbprints: []string{"rk1"}, RemoteKeysFetchedAt: at(5), RemoteKeysApprovedAt: at(2),
		History: []store.ClientChange{
			{At: at(3), What: "jwks_uri keys", Old: []string{"rk1"}, New: []string{"rk2", "rk3"}},
			{At: at(2), What: "approved", By: "admin"},
		},
	}
	empty := &store.ClientRecord{ClientID: "a-dynamic"}
	for _, r := range []*store.ClientRecord{full, empty} {
		if err := st.PutClientRecord(ctx, r); err != nil {
			t.Fatalf("PutClientRecord(%s): %v", r.ClientID, err)
		}
		got, err := st.GetClientRecord(ctx, r.ClientID)
		if err != nil {
			t.Fatalf("GetClientRecord(%s): %v", r.ClientID, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("GetClientRecord(%s) =\n%+v\nwant\n%+v", r.ClientID, got, r)
		}
	}
	// Returned records are copies.
	got, _ := st.GetClientRecord(ctx, full.ClientID)
	got.RedirectURIs[0] = "mutated"
	again, _ := st.GetClientRecord(ctx, full.ClientID)
	if again.RedirectURIs[0] != full.RedirectURIs[0] {
		t.Error("mutating a returned record changed the store")
	}
	// Replace.
	upd := store.CloneClientRecord(full)
	upd.Changed, upd.ApprovedRedirectURIs = false, upd.RedirectURIs
	if err := st.PutClientRecord(ctx, upd); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListClientRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ClientID != "a-dynamic" || list[1].ClientID != full.ClientID {
		t.Fatalf("ListClientRecords = %d records, want [a-dynamic, %s]", len(list), full.ClientID)
	}
	if !reflect.DeepEqual(list[1], upd) {
		t.Errorf("replaced record =\n%+v\nwant\n%+v", list[1], upd)
	}
}

func testToolRecords(t *testing.T, s Stores) {
	ctx := context.Background()
	st := s.Inventory
	if _, err := st.GetToolRecord(ctx, "fs", "read"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetToolRecord(unknown) = %v, want ErrNotFound", err)
	}
	recs := []*store.ToolRecord{
		{Upstream: "fs", Name: "write", Definition: `{"name":"write"}`, Digest: "w", ApprovedDefinition: `{"name":"write"}`, ApprovedDigest: "w", FirstSeen: at(1), LastSeen: at(2), ApprovedAt: at(1)},
		{Upstream: "fs", Name: "read", Definition: `{"name":"read","x":1}`, Digest: "r2", ApprovedDefinition: `{"name":"read"}`, ApprovedDigest: "r1", Changed: true, Removed: true, FirstSeen: at(1), LastSeen: at(5), ChangedAt: at(5), ApprovedAt: at(1), ApprovedBy: "bob"},
		{Upstream: "crm", Name: "find", Definition: `{}`, Digest: "f"},
	}
	if err := st.PutToolRecords(ctx, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := st.PutToolRecords(ctx, recs[1:]); err != nil {
		t.Fatal(err)
	}
	if err := st.PutToolRecords(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	got, err := st.GetToolRecord(ctx, "fs", "read")
	if err != nil || !reflect.DeepEqual(got, recs[1]) {
		t.Fatalf("GetToolRecord = %+v, %v; want %+v", got, err, recs[1])
	}
	all, err := st.ListToolRecords(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range all {
		names = append(names, r.Upstream+"/"+r.Name)
	}
	if want := []string{"crm/find", "fs/read", "fs/write"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListToolRecords(\"\") = %v, want %v", names, want)
	}
	fs, err := st.ListToolRecords(ctx, "fs")
	if err != nil || len(fs) != 2 || fs[0].Name != "read" || fs[1].Name != "write" {
		t.Errorf("ListToolRecords(fs) = %d records, %v", len(fs), err)
	}
	upd := *recs[1]
	upd.Changed, upd.ApprovedDigest = false, upd.Digest
	if err := st.PutToolRecords(ctx, []*store.ToolRecord{&upd}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetToolRecord(ctx, "fs", "read"); got == nil || got.Changed || got.ApprovedDigest != "r2" {
		t.Errorf("after replace: %+v", got)
	}
}

func testUpstreamCredentials(t *testing.T, s Stores) {
	ctx := context.Background()
	st := s.Inventory
	c1 := &store.UpstreamCredential{Principal: "alice", Upstream: "drive", Kind: "oauth_user", Scope: "files.read", CreatedAt: at(1), ExpiresAt: at(100), LastUsed: at(5)}
	c2 := &store.UpstreamCredential{Principal: "alice", Upstream: "crm", Kind: "enterprise", IdP: "https://idp.example", GrantID: "jti-1"}
	c3 := &store.UpstreamCredential{Principal: "bob", Upstream: "drive", Kind: "oauth_user"}
	for _, c := range []*store.UpstreamCredential{c1, c2, c3} {
		if err := st.PutUpstreamCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	list, err := st.ListUpstreamCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || !reflect.DeepEqual(list[0], c2) || !reflect.DeepEqual(list[1], c1) || !reflect.DeepEqual(list[2], c3) {
		t.Fatalf("ListUpstreamCredentials = %+v", list)
	}
	if err := st.DeleteUpstreamCredential(ctx, "alice", "drive"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUpstreamCredential(ctx, "alice", "drive"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if list, _ := st.ListUpstreamCredentials(ctx); len(list) != 2 {
		t.Fatalf("after delete: %d credentials, want 2", len(list))
	}
}

func testIdentityProviders(t *testing.T, s Stores) {
	ctx := context.Background()
	st := s.Inventory
	if err := st.PutIdentityProvider(ctx, &store.IdentityProvider{Issuer: "https://idp.example", Name: "Corp", Kind: "id-jag", CreatedAt: at(1)}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutIdentityProvider(ctx, &store.IdentityProvider{Issuer: "https://idp.example", Name: "Corp SSO", Kind: "id-jag", CreatedAt: at(9)}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutIdentityProvider(ctx, &store.IdentityProvider{Issuer: "https://a.example", Kind: "oidc-login"}); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListIdentityProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Issuer != "https://a.example" {
		t.Fatalf("ListIdentityProviders = %+v", list)
	}
	if p := list[1]; p.Name != "Corp SSO" || !p.CreatedAt.Equal(at(1)) {
		t.Errorf("updated provider = %+v, want new name and the first CreatedAt", p)
	}
}

func testRevocations(t *testing.T, s Stores) {
	ctx := context.Background()
	st := s.Inventory
	r1 := &store.Revocation{Kind: store.RevokeUser, ID: "alice", By: "admin", Reason: "left", At: at(1)}
	r2 := &store.Revocation{Kind: store.RevokeClient, ID: "https://app.example/c.json", By: "admin", At: at(2)}
	for _, r := range []*store.Revocation{r1, r2} {
		if err := st.PutRevocation(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r1b := *r1
	r1b.At, r1b.By = at(3), "sec"
	if err := st.PutRevocation(ctx, &r1b); err != nil {
		t.Fatal(err)
	}
	list, err := st.ListRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !reflect.DeepEqual(list[0], r2) || !reflect.DeepEqual(list[1], &r1b) {
		t.Fatalf("ListRevocations = %+v", list)
	}
	if err := st.DeleteRevocation(ctx, store.RevokeUser, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteRevocation(ctx, store.RevokeUser, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
}

func testGrantLister(t *testing.T, s Stores) {
	ctx := context.Background()
	gl, ok := s.Identity.(store.GrantLister)
	if !ok {
		t.Fatalf("%T does not implement store.GrantLister", s.Identity)
	}
	now := at(1000)
	for _, tok := range []*store.AccessToken{
		{ID: "b-live", FamilyID: "f1", ClientID: "c", Subject: "alice", Scope: "mcp:tools", IssuedAt: at(900), ExpiresAt: at(2000)},
		{ID: "a-live", ClientID: "m2m", Subject: "m2m", IssuedAt: at(900), ExpiresAt: at(2000)},
		{ID: "expired", FamilyID: "f1", ClientID: "c", Subject: "alice", IssuedAt: at(1), ExpiresAt: at(10)},
		{ID: "revoked", FamilyID: "f2", ClientID: "c", Subject: "bob", IssuedAt: at(900), ExpiresAt: at(2000)},
	} {
		if err := s.Identity.RecordAccessToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Identity.RevokeAccessToken(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	toks, err := gl.ListAccessTokens(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || toks[0].ID != "a-live" || toks[1].ID != "b-live" || toks[1].Scope != "mcp:tools" || !toks[1].ExpiresAt.Equal(at(2000)) {
		t.Fatalf("ListAccessTokens = %+v", toks)
	}
	for _, rt := range []*store.RefreshToken{
		{TokenHash: "h2", FamilyID: "f1", ClientID: "c", Subject: "alice", ExpiresAt: at(5000)},
		{TokenHash: "h1", FamilyID: "f1", ClientID: "c", Subject: "alice", ExpiresAt: at(5000)},
		{TokenHash: "h3", FamilyID: "f2", ClientID: "c", Subject: "bob", ExpiresAt: at(5000)},
		{TokenHash: "h4", FamilyID: "f3", ClientID: "c", Subject: "bob", ExpiresAt: at(5)},
	} {
		if err := s.Identity.CreateRefreshToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Identity.RotateRefreshToken(ctx, "h2", &store.RefreshToken{TokenHash: "h5", FamilyID: "f1", ClientID: "c", Subject: "alice", ExpiresAt: at(5000)}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Identity.RevokeRefreshToken(ctx, "h3"); err != nil {
		t.Fatal(err)
	}
	rts, err := gl.ListRefreshTokens(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, rt := range rts {
		hashes = append(hashes, rt.TokenHash)
	}
	if want := []string{"h1", "h5"}; !reflect.DeepEqual(hashes, want) {
		t.Fatalf("ListRefreshTokens = %v, want %v (used, revoked and expired left out)", hashes, want)
	}
}
