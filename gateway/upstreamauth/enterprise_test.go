package upstreamauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// TestEnterprise: the identity assertion kept at sign-in is exchanged at
// the IdP and the ID-JAG redeemed at the upstream's authorization server;
// the token is cached, obtained again before it expires, stepped up when
// the upstream asks for more scope; the IdP's refusal and a missing
// assertion are clear errors; every step is reported.
func TestEnterprise(t *testing.T) {
	ctx := context.Background()
	idp, err := testidp.Start(&testidp.Options{
		Users:   map[string]testidp.User{"alice": {}, "bob": {}},
		Clients: map[string]testidp.Client{"gw": {Secret: "idp-secret"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	up := newTestUpstream(t, func(o *authserver.Options) {
		o.TrustedIssuers = []authserver.TrustedIssuer{{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL()}}
		o.Resources[0].Scopes = []string{"files:read", "files:write"}
	})
	idp.SetPolicy([]testidp.Rule{{Subject: "alice", Audience: up.as.Issuer(), Resource: up.url, Scopes: []string{"files:read", "files:write"}, ClientID: "gw"}})
	if err := up.st.CreateClient(ctx, &store.Client{ID: "gw", Kind: store.ClientPreRegistered, Name: "mcpgate",
		SecretHash: store.Digest("as-secret"), GrantTypes: []string{meta.GrantTypeJWTBearer},
		TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic, Scope: "files:read files:write", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_ENT_IDP_SECRET", "idp-secret")
	t.Setenv("TEST_ENT_AS_SECRET", "as-secret")

	var mu sync.Mutex
	var events []ExchangeEvent
	s := New(&Options{PerUser: true, Hooks: Hooks{OnExchange: func(_ context.Context, ev ExchangeEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}})
	outcomes := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, ev := range events {
			out = append(out, ev.Principal+":"+ev.Outcome)
		}
		events = nil
		return out
	}
	desc := Upstream{Name: "files", URL: up.url, Credentials: &config.Credentials{Type: config.CredentialsEnterprise,
		ClientID: "gw", ClientSecretEnv: "TEST_ENT_AS_SECRET", Scopes: []string{"files:read"},
		IdPTokenURL: idp.TokenEndpoint(), IdPClientID: "gw", IdPClientSecretEnv: "TEST_ENT_IDP_SECRET"}}
	keep := func(user string) {
		idt, err := idp.IDToken(user, "gw", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.KeepAssertion(ctx, user, idt, idp.Issuer, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	// No assertion: a clear error, no exchange.
	var na *NoAssertionError
	if _, err := s.HTTPClient(ctx, desc, nil, "alice"); !errors.As(err, &na) {
		t.Fatalf("without an assertion: %v", err)
	}
	if got := outcomes(); !slices.Equal(got, []string{"alice:refused"}) {
		t.Errorf("events %v", got)
	}

	keep("alice")
	hc, err := s.HTTPClient(ctx, desc, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	wantSub := principal.Federated(idp.Issuer, "alice").String()
	if status, body := get(t, hc, up.url); status != http.StatusOK || body != wantSub {
		t.Fatalf("upstream answered %d %q, want %q", status, body, wantSub)
	}
	if got := outcomes(); !slices.Equal(got, []string{"alice:asked", "alice:granted"}) {
		t.Errorf("events %v", got)
	}
	// Cached: a second client and request make no exchange.
	hc2, err := s.HTTPClient(ctx, desc, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	get(t, hc2, up.url)
	if got := outcomes(); len(got) != 0 {
		t.Errorf("cached token: events %v", got)
	}
	tk, err := s.loadToken(ctx, s.described(desc), "alice")
	if err != nil || tk == nil || tk.Grant == nil || tk.Grant.JTI == "" || tk.Grant.IdP != idp.Issuer {
		t.Fatalf("stored token %v (grant %+v): %v", tk, tk.Grant, err)
	}

	// About to expire: exchanged again.
	tk.Expiry = time.Now().Add(10 * time.Second)
	if err := s.saveToken(ctx, s.described(desc), "alice", tk); err != nil {
		t.Fatal(err)
	}
	hc3, err := s.HTTPClient(ctx, desc, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, hc3, up.url); status != http.StatusOK {
		t.Fatalf("after the re-exchange: HTTP %d", status)
	}
	if got := outcomes(); !slices.Equal(got, []string{"alice:asked", "alice:refreshed"}) {
		t.Errorf("events %v", got)
	}

	// Step-up: the upstream asks for files:write.
	if status, body := get(t, hc3, up.url+"/write"); status != http.StatusOK || body != "wrote as "+wantSub {
		t.Fatalf("step-up: %d %q", status, body)
	}
	if tk, _ := s.loadToken(ctx, s.described(desc), "alice"); tk == nil || !covers(tk.Scope, "files:read files:write") {
		t.Errorf("after step-up the token has scope %v", tk)
	}
	outcomes()

	// Bob: the IdP refuses, and says why.
	keep("bob")
	_, err = s.HTTPClient(ctx, desc, nil, "bob")
	var re *RefusedError
	if !errors.As(err, &re) || !re.ByIdP || re.Code != meta.ErrAccessDenied || re.Description == "" {
		t.Fatalf("bob: %v, want the IdP's refusal", err)
	}
	if got := outcomes(); !slices.Equal(got, []string{"bob:asked", "bob:refused"}) {
		t.Errorf("events %v", got)
	}

	// Revocation: the token is dropped, then the assertion.
	if outcome, err := s.RevokeGrant(ctx, desc, "alice"); err != nil || outcome != GrantDropped {
		t.Errorf("RevokeGrant = %q, %v", outcome, err)
	}
	if err := s.ForgetAssertion(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HTTPClient(ctx, desc, nil, "alice"); !errors.As(err, &na) {
		t.Errorf("after revocation: %v", err)
	}
}
