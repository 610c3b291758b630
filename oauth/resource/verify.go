package resource

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/principal"
)

// KeySource verifies a JWS signature and returns the payload. It is
// satisfied by *oidc.RemoteKeySet, *oidc.StaticKeySet and the co-hosted
// *authserver.Server.
type KeySource interface {
	VerifySignature(ctx context.Context, jws string) ([]byte, error)
}

// RevocationChecker reports revoked token ids (jti); the co-hosted
// *authserver.Server and store.Store satisfy it via IsRevoked /
// IsAccessTokenRevoked adapters.
type RevocationChecker interface {
	IsRevoked(ctx context.Context, jti string) (bool, error)
}

// RemoteJWKS returns a key source that fetches and caches a JWKS URL
// with hc (nil means http.DefaultClient).
func RemoteJWKS(jwksURL string, hc *http.Client) KeySource {
	if hc == nil {
		hc = http.DefaultClient
	}
	return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), hc), jwksURL)
}

// JWTOptions configures JWT access token checks.
type JWTOptions struct {
	// Algorithms accepted; nil means ES256 and RS256.
	Algorithms []string
	// Revocation, if set, is consulted for every token's jti.
	Revocation RevocationChecker
	// AllowUntypedJWT accepts tokens without typ "at+jwt" (some external
	// authorization servers omit it).
	AllowUntypedJWT bool
	// Leeway on exp/nbf/iat; 0 means 30 s.
	Leeway time.Duration
	// Now overrides the clock.
	Now func() time.Time
}

// JWTVerifier checks RFC 9068 JWT access tokens.
type JWTVerifier struct {
	issuer, audience string
	keys             KeySource
	opts             JWTOptions
}

// NewJWTVerifier returns a verifier for tokens from issuer whose audience
// must include audience (the resource's canonical URI).
func NewJWTVerifier(issuer, audience string, keys KeySource, opts *JWTOptions) *JWTVerifier {
	v := &JWTVerifier{issuer: issuer, audience: audience, keys: keys}
	if opts != nil {
		v.opts = *opts
	}
	if v.opts.Algorithms == nil {
		v.opts.Algorithms = []string{"ES256", "RS256"}
	}
	if v.opts.Leeway == 0 {
		v.opts.Leeway = 30 * time.Second
	}
	if v.opts.Now == nil {
		v.opts.Now = time.Now
	}
	return v
}

type tokenClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  jsontext.Value `json:"aud"`
	ClientID  string         `json:"client_id"`
	Scope     string         `json:"scope"`
	ID        string         `json:"jti"`
	Expiry    *float64       `json:"exp"`
	NotBefore *float64       `json:"nbf"`
	IssuedAt  *float64       `json:"iat"`
	// Identity attributes of the user (see [principal.Attributes]).
	Groups []string `json:"groups"`
	Roles  []string `json:"roles"`
	Email  string   `json:"email"`
	Name   string   `json:"name"`
	IdP    string   `json:"idp"`
}

// identity checks the identity attributes of a token against the bounds
// and fills them into p.
func identity(p *Principal, groups, roles []string, email, name, idp string) error {
	a, err := principal.Attributes{Groups: groups, Roles: roles, Email: email, Name: name, IdP: idp}.Normalize()
	if err != nil {
		return invalid("identity claims: %v", err)
	}
	p.Groups, p.Roles, p.Email, p.Name, p.IdP = a.Groups, a.Roles, a.Email, a.Name, a.IdP
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

func audiences(v jsontext.Value) []string {
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(v, &many) == nil {
		return many
	}
	return nil
}

// Verify implements TokenVerifier.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	algs := make([]jose.SignatureAlgorithm, len(v.opts.Algorithms))
	for i, a := range v.opts.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(token, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalid("malformed token or unsupported algorithm")
	}
	typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string)
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	if typ != "at+jwt" && !(v.opts.AllowUntypedJWT && (typ == "" || typ == "jwt")) {
		return nil, invalid("token is not an access token (typ %q)", typ)
	}
	payload, err := v.keys.VerifySignature(ctx, token)
	if err != nil {
		return nil, invalid("signature is not valid")
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("claims are malformed")
	}
	now := v.opts.Now()
	if c.Issuer != v.issuer {
		return nil, invalid("token issuer is not trusted here")
	}
	if !slices.Contains(audiences(c.Audience), v.audience) {
		return nil, invalid("token audience is not this resource (%s)", v.audience)
	}
	if c.Expiry == nil {
		return nil, invalid("token has no exp")
	}
	exp := time.Unix(int64(*c.Expiry), 0)
	if !exp.Add(v.opts.Leeway).After(now) {
		return nil, invalid("token expired")
	}
	if c.NotBefore != nil && time.Unix(int64(*c.NotBefore), 0).After(now.Add(v.opts.Leeway)) {
		return nil, invalid("token is not valid yet")
	}
	if c.Subject == "" {
		return nil, invalid("token has no sub")
	}
	if v.opts.Revocation != nil {
		if c.ID == "" {
			return nil, invalid("token has no jti, so its revocation cannot be checked")
		}
		revoked, err := v.opts.Revocation.IsRevoked(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("checking revocation: %w", err)
		}
		if revoked {
			return nil, invalid("token was revoked")
		}
	}
	p := &Principal{Subject: c.Subject, ClientID: c.ClientID, Scopes: strings.Fields(c.Scope), TokenID: c.ID, Issuer: c.Issuer, ExpiresAt: exp}
	if err := identity(p, c.Groups, c.Roles, c.Email, c.Name, c.IdP); err != nil {
		return nil, err
	}
	return p, nil
}

// IntrospectionVerifier checks tokens with an RFC 7662 introspection
// endpoint, authenticating with client_secret_basic.
type IntrospectionVerifier struct {
	endpoint, clientID, clientSecret, audience, issuer string
	hc                                                 *http.Client
}

// NewIntrospectionVerifier returns a verifier that asks endpoint about
// every token. audience is this resource's canonical URI; issuer, if not
// empty, must match the iss reported. hc nil means http.DefaultClient.
func NewIntrospectionVerifier(endpoint, clientID, clientSecret, audience, issuer string, hc *http.Client) *IntrospectionVerifier {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &IntrospectionVerifier{endpoint: endpoint, clientID: clientID, clientSecret: clientSecret, audience: audience, issuer: issuer, hc: hc}
}

type introspection struct {
	Active   bool           `json:"active"`
	Scope    string         `json:"scope"`
	ClientID string         `json:"client_id"`
	Subject  string         `json:"sub"`
	Audience jsontext.Value `json:"aud"`
	Issuer   string         `json:"iss"`
	ID       string         `json:"jti"`
	Expiry   int64          `json:"exp"`
	Type     string         `json:"token_type"`
	Groups   []string       `json:"groups"`
	Roles    []string       `json:"roles"`
	Email    string         `json:"email"`
	Name     string         `json:"name"`
	IdP      string         `json:"idp"`
}

// Verify implements TokenVerifier.
func (v *IntrospectionVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	defer resp.Body.Close()
	body, err := safehttp.ReadLimited(resp.Body, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("introspection: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("introspection: HTTP %d", resp.StatusCode)
	}
	var in introspection
	if err := json.Unmarshal(body, &in, json.RejectUnknownMembers(false)); err != nil {
		return nil, fmt.Errorf("introspection response: %w", err)
	}
	if !in.Active {
		return nil, invalid("token is not active")
	}
	if in.Type != "" && !strings.EqualFold(in.Type, meta.TokenTypeBearer) {
		return nil, invalid("token is not an access token")
	}
	if v.issuer != "" && in.Issuer != v.issuer {
		return nil, invalid("token issuer is not trusted here")
	}
	if !slices.Contains(audiences(in.Audience), v.audience) {
		return nil, invalid("token audience is not this resource (%s)", v.audience)
	}
	var exp time.Time
	if in.Expiry != 0 {
		exp = time.Unix(in.Expiry, 0)
	}
	p := &Principal{Subject: in.Subject, ClientID: in.ClientID, Scopes: strings.Fields(in.Scope), TokenID: in.ID, Issuer: in.Issuer, ExpiresAt: exp}
	if err := identity(p, in.Groups, in.Roles, in.Email, in.Name, in.IdP); err != nil {
		return nil, err
	}
	return p, nil
}
