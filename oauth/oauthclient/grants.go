package oauthclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// ClientCredentials obtains a token with the client credentials grant (MCP
// OAuth client credentials extension): client authentication by secret or
// private_key_jwt, the resource parameter and the optional scope.
func ClientCredentials(ctx context.Context, hc *http.Client, d *Discovery, client *ClientAuth, scope string) (*Token, error) {
	as := d.AuthorizationServer
	if as == nil || as.TokenEndpoint == "" {
		return nil, errors.New("oauthclient: client credentials: no token endpoint")
	}
	if client == nil || client.ClientID == "" {
		return nil, fmt.Errorf("%w: client credentials need a pre-registered client", ErrNoClientIdentity)
	}
	if client.resolveMethod(as) == meta.AuthMethodNone {
		return nil, errors.New("oauthclient: client credentials need a client secret or private key")
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeClientCredentials)
	form.Set("resource", d.Resource)
	if scope != "" {
		form.Set("scope", scope)
	}
	tr, err := tokenRequest(ctx, hc, as.TokenEndpoint, form, client, as)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: client credentials: %w", err)
	}
	tok, err := tokenFromResponse(tr, time.Now(), scope, d.Resource, as.Issuer, as.TokenEndpoint, client)
	if err != nil {
		return nil, err
	}
	tok.RefreshToken = "" // not used with client credentials (OAuth 2.1 §4.2.3)
	return tok, nil
}

// Enterprise configures enterprise-managed authorization: the identity
// assertion from the enterprise IdP and how to reach the IdP's token
// endpoint for the RFC 8693 exchange.
type Enterprise struct {
	// IDToken returns the identity assertion (an OpenID Connect ID Token,
	// or a SAML assertion with SubjectTokenType TokenTypeSAML2). Required.
	IDToken func(ctx context.Context) (string, error)
	// SubjectTokenType defaults to meta.TokenTypeIDToken.
	SubjectTokenType string
	// IdPTokenEndpoint is the IdP's token endpoint. If empty, it is
	// discovered from IdPIssuer.
	IdPTokenEndpoint string
	// IdPIssuer is the IdP's issuer, used for discovery when
	// IdPTokenEndpoint is empty.
	IdPIssuer string
	// IdPClient authenticates the client at the IdP; nil sends no client
	// authentication.
	IdPClient *ClientAuth
}

// IDJAG is an Identity Assertion JWT Authorization Grant from the IdP.
type IDJAG struct {
	// Assertion is the ID-JAG JWT.
	Assertion string
	// Scope is the scope the IdP granted, if it said.
	Scope string
	// Expiry is when the grant expires, if the IdP said.
	Expiry time.Time
	// Issuer and JTI are the ID-JAG's iss and jti claims, read without
	// verifying its signature (the authorization server does that), ""
	// when they cannot be read.
	Issuer, JTI string
}

// maxAssertion bounds the size of an ID-JAG whose claims are read.
const maxAssertion = 64 << 10

// readClaims fills in g's Issuer and JTI from the ID-JAG's payload.
func (g *IDJAG) readClaims() {
	parts := strings.Split(g.Assertion, ".")
	if len(g.Assertion) > maxAssertion || len(parts) != 3 {
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return
	}
	var c struct {
		Iss string `json:"iss"`
		JTI string `json:"jti"`
	}
	if json.Unmarshal(payload, &c) == nil {
		g.Issuer, g.JTI = c.Iss, c.JTI
	}
}

// Info returns what the ID-JAG says of the grant, for the token obtained
// with it.
func (g *IDJAG) Info() *GrantInfo {
	return &GrantInfo{IdP: g.Issuer, JTI: g.JTI, Scope: g.Scope}
}

// RequestIDJAG performs the RFC 8693 token exchange at the IdP: the
// identity assertion is exchanged for an ID-JAG whose audience is the MCP
// authorization server's issuer and whose resource is d.Resource.
func RequestIDJAG(ctx context.Context, hc *http.Client, d *Discovery, ent *Enterprise, scope string) (*IDJAG, error) {
	if ent == nil || ent.IDToken == nil {
		return nil, errors.New("oauthclient: enterprise: no identity assertion source")
	}
	if d.AuthorizationServer == nil {
		return nil, errors.New("oauthclient: enterprise: no authorization server metadata")
	}
	endpoint := ent.IdPTokenEndpoint
	if endpoint == "" {
		if ent.IdPIssuer == "" {
			return nil, errors.New("oauthclient: enterprise: need IdPTokenEndpoint or IdPIssuer")
		}
		idp, err := FetchAuthorizationServerMetadata(ctx, hc, ent.IdPIssuer)
		if err != nil {
			return nil, fmt.Errorf("oauthclient: enterprise: IdP discovery: %w", err)
		}
		if idp.TokenEndpoint == "" {
			return nil, errors.New("oauthclient: enterprise: IdP has no token endpoint")
		}
		endpoint = idp.TokenEndpoint
	}
	subject, err := ent.IDToken(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: enterprise: identity assertion: %w", err)
	}
	if subject == "" {
		return nil, errors.New("oauthclient: enterprise: empty identity assertion")
	}
	stt := ent.SubjectTokenType
	if stt == "" {
		stt = meta.TokenTypeIDToken
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeTokenExchange)
	form.Set("requested_token_type", meta.TokenTypeIDJAG)
	form.Set("audience", d.AuthorizationServer.Issuer)
	form.Set("resource", d.Resource)
	if scope != "" {
		form.Set("scope", scope)
	}
	form.Set("subject_token", subject)
	form.Set("subject_token_type", stt)
	idpMeta := &meta.AuthorizationServerMetadata{Issuer: ent.IdPIssuer, TokenEndpoint: endpoint}
	if ent.IdPClient != nil && ent.IdPClient.AssertionAudience == "" && ent.IdPIssuer == "" {
		idpMeta.Issuer = endpoint
	}
	h := http.Header{}
	if ent.IdPClient != nil {
		if err := ent.IdPClient.apply(form, h, idpMeta, time.Now()); err != nil {
			return nil, err
		}
	}
	tr, err := postForm(ctx, hc, endpoint, form, h, meta.ParseTokenResponse, nil)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: enterprise: token exchange: %w", err)
	}
	if tr.IssuedTokenType != "" && tr.IssuedTokenType != meta.TokenTypeIDJAG {
		return nil, fmt.Errorf("oauthclient: enterprise: IdP issued %q, want %q", tr.IssuedTokenType, meta.TokenTypeIDJAG)
	}
	g := &IDJAG{Assertion: tr.AccessToken, Scope: tr.Scope}
	if tr.ExpiresIn > 0 {
		g.Expiry = time.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	g.readClaims()
	return g, nil
}

// EnterpriseExchange runs enterprise-managed authorization: RequestIDJAG at
// the IdP, then the RFC 7523 jwt-bearer grant with the ID-JAG at the MCP
// authorization server, authenticating as client. The resulting token has
// no refresh token: when it expires, run the exchange again.
func EnterpriseExchange(ctx context.Context, hc *http.Client, d *Discovery, client *ClientAuth, ent *Enterprise, scope string) (*Token, error) {
	as := d.AuthorizationServer
	if as == nil || as.TokenEndpoint == "" {
		return nil, errors.New("oauthclient: enterprise: no token endpoint")
	}
	if client == nil || client.ClientID == "" {
		return nil, fmt.Errorf("%w: enterprise-managed authorization needs a registered client", ErrNoClientIdentity)
	}
	g, err := RequestIDJAG(ctx, hc, d, ent, scope)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeJWTBearer)
	form.Set("assertion", g.Assertion)
	form.Set("resource", d.Resource)
	if scope != "" {
		form.Set("scope", scope)
	}
	tr, err := tokenRequest(ctx, hc, as.TokenEndpoint, form, client, as)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: enterprise: jwt-bearer grant: %w", err)
	}
	if scope == "" {
		scope = g.Scope
	}
	tok, err := tokenFromResponse(tr, time.Now(), scope, d.Resource, as.Issuer, as.TokenEndpoint, client)
	if err != nil {
		return nil, err
	}
	tok.RefreshToken = "" // the profile issues no refresh tokens
	tok.Grant = g.Info()
	return tok, nil
}

// Refresh exchanges tok's refresh token for a new token at tok's token
// endpoint, sending tok's resource. If the server rotates the refresh
// token the new one replaces it; otherwise the old one is kept.
// as may be nil; it is used for client authentication choices and the
// private_key_jwt audience (tok.Issuer otherwise).
func Refresh(ctx context.Context, hc *http.Client, client *ClientAuth, tok *Token, as *meta.AuthorizationServerMetadata) (*Token, error) {
	if tok == nil || tok.RefreshToken == "" {
		return nil, errors.New("oauthclient: refresh: no refresh token")
	}
	if tok.TokenEndpoint == "" {
		return nil, errors.New("oauthclient: refresh: token has no token endpoint")
	}
	if client == nil {
		client = &ClientAuth{ClientID: tok.ClientID}
	}
	if as == nil {
		as = &meta.AuthorizationServerMetadata{Issuer: tok.Issuer, TokenEndpoint: tok.TokenEndpoint}
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeRefreshToken)
	form.Set("refresh_token", tok.RefreshToken)
	if tok.Resource != "" {
		form.Set("resource", tok.Resource)
	}
	tr, err := tokenRequest(ctx, hc, tok.TokenEndpoint, form, client, as)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: refresh: %w", err)
	}
	nt, err := tokenFromResponse(tr, time.Now(), tok.Scope, tok.Resource, tok.Issuer, tok.TokenEndpoint, client)
	if err != nil {
		return nil, err
	}
	if nt.RefreshToken == "" {
		nt.RefreshToken = tok.RefreshToken
	}
	return nt, nil
}

// JWTBearer obtains a token with the RFC 7523 JWT bearer grant, presenting
// assertion (for example a workload identity token whose audience is the
// authorization server) and authenticating as client when it has
// credentials (a client with only a client_id sends it in the body). There
// is no refresh token; obtain a new assertion instead. Errors are returned
// as they are, without retrying or switching grant types.
func JWTBearer(ctx context.Context, hc *http.Client, d *Discovery, client *ClientAuth, assertion, scope string) (*Token, error) {
	as := d.AuthorizationServer
	if as == nil || as.TokenEndpoint == "" {
		return nil, errors.New("oauthclient: jwt-bearer: no token endpoint")
	}
	if assertion == "" {
		return nil, errors.New("oauthclient: jwt-bearer: empty assertion")
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeJWTBearer)
	form.Set("assertion", assertion)
	form.Set("resource", d.Resource)
	if scope != "" {
		form.Set("scope", scope)
	}
	tr, err := tokenRequest(ctx, hc, as.TokenEndpoint, form, client, as)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: jwt-bearer grant: %w", err)
	}
	tok, err := tokenFromResponse(tr, time.Now(), scope, d.Resource, as.Issuer, as.TokenEndpoint, client)
	if err != nil {
		return nil, err
	}
	tok.RefreshToken = ""
	return tok, nil
}
