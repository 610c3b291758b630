package testidp_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
)

const (
	asIssuer = "http://127.0.0.1:1/oauth"
	resource = "http://127.0.0.1:1/mcp"
)

func start(t *testing.T) *testidp.IdP {
	t.Helper()
	p, err := testidp.Start(&testidp.Options{
		Users:   map[string]testidp.User{"alice": {}, "bob": {}},
		Clients: map[string]testidp.Client{"gw": {Secret: "s3cret"}},
		Policy:  []testidp.Rule{{Subject: "alice", Audience: asIssuer, Resource: resource, Scopes: []string{"tools", "read"}, ClientID: "gw-at-b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestSignIn: an OIDC relying party (go-oidc) signs alice in and
// verifies her ID token with the IdP's discovery and JWKS.
func TestSignIn(t *testing.T) {
	p := start(t)
	p.SignInAs("alice")
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: "gw", ClientSecret: "s3cret", Endpoint: prov.Endpoint(), RedirectURL: "http://127.0.0.1:9/cb", Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(cfg.AuthCodeURL("st", oidc.Nonce("n1"), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
		t.Fatalf("redirect %q (HTTP %d)", resp.Header.Get("Location"), resp.StatusCode)
	}
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := prov.Verifier(&oidc.Config{ClientID: "gw"}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || idt.Nonce != "n1" {
		t.Errorf("ID token sub %q nonce %q", idt.Subject, idt.Nonce)
	}
	if _, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil {
		t.Error("a code was redeemed twice")
	}
}

// TestExchange: the policy table decides who gets an ID-JAG.
func TestExchange(t *testing.T) {
	p := start(t)
	ctx := context.Background()
	d := &oauthclient.Discovery{Resource: resource, AuthorizationServer: &meta.AuthorizationServerMetadata{Issuer: asIssuer, TokenEndpoint: asIssuer + "/token"}}
	ent := func(sub string) *oauthclient.Enterprise {
		return &oauthclient.Enterprise{IdPTokenEndpoint: p.TokenEndpoint(), IdPClient: &oauthclient.ClientAuth{ClientID: "gw", ClientSecret: "s3cret"},
			IDToken: func(context.Context) (string, error) { return p.IDToken(sub, "gw", "") }}
	}
	g, err := oauthclient.RequestIDJAG(ctx, http.DefaultClient, d, ent("alice"), "tools")
	if err != nil {
		t.Fatal(err)
	}
	if g.Scope != "tools" || g.Assertion == "" || g.Expiry.IsZero() || g.Issuer != p.Issuer || g.JTI == "" {
		t.Errorf("ID-JAG %+v", g)
	}
	_, err = oauthclient.RequestIDJAG(ctx, http.DefaultClient, d, ent("bob"), "")
	if err == nil || !strings.Contains(err.Error(), "access_denied") || !strings.Contains(err.Error(), "bob may not access") {
		t.Errorf("bob: %v", err)
	}
	ex := p.Exchanges()
	if len(ex) != 2 || !ex[0].Granted || ex[0].JTI != g.JTI || ex[1].Granted || ex[1].Reason == "" {
		t.Errorf("exchanges %+v", ex)
	}
	// An ID token issued to another client is not a subject token.
	bad := ent("alice")
	bad.IDToken = func(context.Context) (string, error) { return p.IDToken("alice", "other", "") }
	if _, err := oauthclient.RequestIDJAG(ctx, http.DefaultClient, d, bad, ""); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("foreign ID token: %v", err)
	}
}
