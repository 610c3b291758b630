package oauthclient

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// Flow names the grant an Authorizer uses to obtain tokens.
type Flow string

// Flows.
const (
	// FlowAuthorizationCode is the authorization code grant with PKCE (the
	// default): a user authorizes through AuthorizationHandler.
	FlowAuthorizationCode Flow = "authorization_code"
	// FlowClientCredentials is the client credentials grant (OAuth client
	// credentials extension): no user, pre-registered client.
	FlowClientCredentials Flow = "client_credentials"
	// FlowEnterprise is enterprise-managed authorization: ID token →
	// ID-JAG at the IdP → jwt-bearer grant at the MCP authorization server.
	FlowEnterprise Flow = "enterprise"
	// FlowJWTBearer is the RFC 7523 JWT bearer grant with an assertion from
	// Config.Assertion (e.g. workload identity federation).
	FlowJWTBearer Flow = "jwt_bearer"
)

// DefaultMaxStepUps is the default Config.MaxStepUps.
const DefaultMaxStepUps = 2

// Config configures authorization for one MCP server.
type Config struct {
	// ServerURL is the MCP server (endpoint) URL. Required.
	ServerURL string
	// Flow selects the grant; default FlowAuthorizationCode.
	Flow Flow

	// Client is a pre-registered client (ClientID set, with a secret or
	// private key for confidential clients). It is used first when set;
	// client credentials and enterprise flows require it (enterprise also
	// accepts dynamic registration).
	Client *ClientAuth
	// ClientIDMetadataURL is the https URL of this client's Client ID
	// Metadata Document, used as client_id when the authorization server
	// advertises client_id_metadata_document_supported and Client is nil.
	ClientIDMetadataURL string
	// ClientMetadata is the template for dynamic client registration
	// (client_name, etc.). Defaults: client_name "mcpgate", redirect_uris
	// [RedirectURL], grant_types [authorization_code refresh_token],
	// response_types [code], and a token_endpoint_auth_method the server
	// supports (none preferred).
	ClientMetadata *meta.ClientMetadata
	// DisableDynamicRegistration forbids RFC 7591 registration.
	DisableDynamicRegistration bool

	// RedirectURL is the redirect URI for the authorization code flow,
	// e.g. LoopbackReceiver.RedirectURL() or "http://localhost:3000/callback".
	RedirectURL string
	// AuthorizationHandler takes the user agent through the authorization
	// endpoint (LoopbackReceiver for interactive use, HeadlessHandler or a
	// custom one otherwise).
	AuthorizationHandler AuthorizationCodeHandler
	// Scope, when set, replaces scope selection for the initial
	// authorization (step-up still adds challenged scopes).
	Scope string

	// Enterprise configures FlowEnterprise.
	Enterprise *Enterprise
	// Assertion returns the JWT presented by FlowJWTBearer.
	Assertion func(ctx context.Context) (string, error)

	// DPoP requests DPoP-bound tokens (RFC 9449) from authorization servers
	// that advertise dpop_signing_alg_values_supported with the key's
	// algorithm, and presents them with DPoP proofs.
	DPoP bool
	// DPoPKey is the DPoP key; nil generates a P-256 key per Authorizer.
	DPoPKey crypto.Signer

	// TokenStore keeps tokens (keyed by ServerURL); default in memory.
	TokenStore TokenStore
	// HTTPClient makes discovery, registration and token requests. Default:
	// safehttp.NewClient(SafeHTTP). It is never used for MCP requests.
	HTTPClient *http.Client
	// SafeHTTP configures the default HTTPClient (e.g. AllowLoopback and
	// AllowInsecureLoopback for local development).
	SafeHTTP *safehttp.Options
	// Legacy20250326 enables the 2025-03-26 discovery fallback.
	Legacy20250326 bool
	// MaxStepUps bounds step-up re-authorizations per request on 403
	// insufficient_scope; default DefaultMaxStepUps; negative disables
	// step-up.
	MaxStepUps int
	// MaxReplayBodyBytes bounds the request body buffered for replay after
	// authorization; default 8 MiB. Larger bodies are sent once, unreplayed.
	MaxReplayBodyBytes int64
}

// Authorizer obtains, stores, refreshes and re-obtains tokens for one MCP
// server according to a Config. It is safe for concurrent use; flows are
// serialised.
type Authorizer struct {
	cfg   Config
	hc    *http.Client
	store TokenStore

	mu         sync.Mutex
	discovery  *Discovery
	registered map[string]*ClientAuth // by issuer
	futile     map[string]bool        // challenged scope sets already retried
	dpop       *DPoPSigner            // nil unless Config.DPoP
}

// NewAuthorizer validates cfg and returns an Authorizer.
func NewAuthorizer(cfg *Config) (*Authorizer, error) {
	if cfg == nil {
		return nil, errors.New("oauthclient: nil config")
	}
	c := *cfg
	if err := checkServerURL(c.ServerURL); err != nil {
		return nil, err
	}
	if c.Flow == "" {
		c.Flow = FlowAuthorizationCode
	}
	switch c.Flow {
	case FlowAuthorizationCode:
	case FlowClientCredentials:
		if c.Client == nil || c.Client.ClientID == "" {
			return nil, fmt.Errorf("%w: client credentials need Config.Client", ErrNoClientIdentity)
		}
	case FlowEnterprise:
		if c.Enterprise == nil || c.Enterprise.IDToken == nil {
			return nil, errors.New("oauthclient: enterprise flow needs Config.Enterprise with IDToken")
		}
	case FlowJWTBearer:
		if c.Assertion == nil {
			return nil, errors.New("oauthclient: jwt-bearer flow needs Config.Assertion")
		}
	default:
		return nil, fmt.Errorf("oauthclient: unknown flow %q", c.Flow)
	}
	if c.ClientIDMetadataURL != "" {
		if err := meta.ValidateClientIDMetadataURL(c.ClientIDMetadataURL); err != nil {
			return nil, err
		}
	}
	if c.MaxStepUps == 0 {
		c.MaxStepUps = DefaultMaxStepUps
	}
	if c.MaxReplayBodyBytes <= 0 {
		c.MaxReplayBodyBytes = 8 << 20
	}
	a := &Authorizer{cfg: c, hc: c.HTTPClient, store: c.TokenStore, registered: map[string]*ClientAuth{}, futile: map[string]bool{}}
	if c.DPoP {
		d, err := NewDPoPSigner(c.DPoPKey, "")
		if err != nil {
			return nil, err
		}
		a.dpop = d
	}
	if a.hc == nil {
		a.hc = safehttp.NewClient(c.SafeHTTP)
	}
	if a.store == nil {
		a.store = NewMemoryTokenStore()
	}
	return a, nil
}

// ServerURL returns the configured MCP server URL.
func (a *Authorizer) ServerURL() string { return a.cfg.ServerURL }

// Discovery returns the result of the last discovery, or nil.
func (a *Authorizer) Discovery() *Discovery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.discovery
}

// Token returns the stored token, refreshed first if it has expired and
// can be refreshed. It returns (nil, nil) when there is no usable token.
func (a *Authorizer) Token(ctx context.Context) (*Token, error) {
	tok, err := a.store.Load(ctx, a.cfg.ServerURL)
	if err != nil || tok == nil {
		return nil, err
	}
	if !tok.Expired(time.Now()) {
		return tok, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Another caller may have refreshed meanwhile.
	if cur, err := a.store.Load(ctx, a.cfg.ServerURL); err == nil && cur != nil && !cur.Expired(time.Now()) {
		return cur, nil
	}
	nt, err := a.refreshLocked(ctx, tok)
	if err != nil {
		return nil, nil // unusable; the next 401 starts a new authorization
	}
	return nt, nil
}

func (a *Authorizer) refreshLocked(ctx context.Context, tok *Token) (*Token, error) {
	if tok.RefreshToken == "" {
		_ = a.store.Delete(ctx, a.cfg.ServerURL)
		return nil, errors.New("oauthclient: token expired and has no refresh token")
	}
	var as *meta.AuthorizationServerMetadata
	if a.discovery != nil && a.discovery.Issuer != "" && a.discovery.AuthorizationServer != nil && a.discovery.AuthorizationServer.TokenEndpoint == tok.TokenEndpoint {
		as = a.discovery.AuthorizationServer
	}
	nt, err := Refresh(ctx, a.hc, a.clientForTokenLocked(tok), tok, as)
	if err != nil {
		_ = a.store.Delete(ctx, a.cfg.ServerURL)
		return nil, err
	}
	if err := a.store.Save(ctx, a.cfg.ServerURL, nt); err != nil {
		return nil, err
	}
	return nt, nil
}

func (a *Authorizer) clientForTokenLocked(tok *Token) *ClientAuth {
	c := &ClientAuth{ClientID: tok.ClientID}
	if a.cfg.Client != nil && a.cfg.Client.ClientID == tok.ClientID {
		c = a.cfg.Client
	} else if r, ok := a.registered[tok.Issuer]; ok && r.ClientID == tok.ClientID {
		c = r
	}
	if tok.TokenType == meta.TokenTypeDPoP && a.dpop != nil {
		k := *c
		k.DPoP = a.dpop
		c = &k
	}
	return c
}

// withDPoP returns client with DPoP proofs enabled when configured and
// supported by as.
func (a *Authorizer) withDPoP(client *ClientAuth, as *meta.AuthorizationServerMetadata) *ClientAuth {
	if client == nil || !a.dpop.supportedBy(as) {
		return client
	}
	k := *client
	k.DPoP = a.dpop
	return &k
}

// DPoPSigner returns the DPoP signer, or nil when DPoP is off.
func (a *Authorizer) DPoPSigner() *DPoPSigner { return a.dpop }

// HandleUnauthorized is called after a 401 from the MCP server for a
// request that carried sent (nil if none). It returns a token to retry
// with: a token another caller obtained meanwhile, a refreshed one, or one
// from a new authorization guided by challenge.
func (a *Authorizer) HandleUnauthorized(ctx context.Context, challenge *meta.BearerChallenge, sent *Token) (*Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, err := a.store.Load(ctx, a.cfg.ServerURL); err == nil && cur != nil && !cur.Expired(time.Now()) &&
		(sent == nil || cur.AccessToken != sent.AccessToken) {
		return cur, nil
	}
	if sent != nil && sent.RefreshToken != "" {
		if nt, err := a.refreshLocked(ctx, sent); err == nil {
			return nt, nil
		}
	}
	return a.authorizeLocked(ctx, challenge, "")
}

// HandleInsufficientScope is called after a 403 insufficient_scope for a
// request that carried sent. It re-authorizes with the union of sent's
// scopes and the challenged ones. It returns ErrStepUpLimit when the
// challenged scopes were already requested and a re-authorization for
// them already failed to satisfy the server.
func (a *Authorizer) HandleInsufficientScope(ctx context.Context, challenge *meta.BearerChallenge, sent *Token) (*Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.MaxStepUps < 0 {
		return nil, ErrStepUpLimit
	}
	if cur, err := a.store.Load(ctx, a.cfg.ServerURL); err == nil && cur != nil && !cur.Expired(time.Now()) &&
		sent != nil && cur.AccessToken != sent.AccessToken && hasAll(cur.Scopes(), strings.Fields(challenge.Scope)) {
		return cur, nil
	}
	challenged := strings.Fields(challenge.Scope)
	var have []string
	if sent != nil {
		have = sent.Scopes()
	}
	if hasAll(have, challenged) {
		key := scopeKey(challenged)
		if a.futile[key] {
			return nil, fmt.Errorf("%w: server still requires %q", ErrStepUpLimit, challenge.Scope)
		}
		a.futile[key] = true
	}
	return a.authorizeLocked(ctx, challenge, strings.Join(union(have, challenged), " "))
}

// Authorize runs discovery and a new authorization now, guided by
// challenge (which may be nil), and stores the token.
func (a *Authorizer) Authorize(ctx context.Context, challenge *meta.BearerChallenge) (*Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.authorizeLocked(ctx, challenge, "")
}

func (a *Authorizer) authorizeLocked(ctx context.Context, ch *meta.BearerChallenge, scopeOverride string) (*Token, error) {
	d, err := Discover(ctx, a.hc, a.cfg.ServerURL, ch, &DiscoverOptions{Legacy20250326: a.cfg.Legacy20250326})
	if err != nil {
		return nil, err
	}
	a.discovery = d
	scope := scopeOverride
	if scope == "" {
		scope = a.cfg.Scope
	}
	if scope == "" {
		scope = d.SelectScope()
	}
	var tok *Token
	as := d.AuthorizationServer
	switch a.cfg.Flow {
	case FlowClientCredentials:
		tok, err = ClientCredentials(ctx, a.hc, d, a.withDPoP(a.cfg.Client, as), scope)
	case FlowJWTBearer:
		var assertion string
		if assertion, err = a.cfg.Assertion(ctx); err == nil {
			client := a.cfg.Client
			if client == nil {
				client = &ClientAuth{}
			}
			tok, err = JWTBearer(ctx, a.hc, d, a.withDPoP(client, as), assertion, scope)
		}
	case FlowEnterprise:
		var client *ClientAuth
		if client, err = a.clientLocked(ctx, d, meta.GrantTypeJWTBearer); err == nil {
			tok, err = EnterpriseExchange(ctx, a.hc, d, a.withDPoP(client, as), a.cfg.Enterprise, scope)
		}
	default:
		if !d.AuthorizationServer.SupportsPKCES256() {
			return nil, fmt.Errorf("%w (issuer %s)", ErrPKCENotSupported, d.Issuer)
		}
		var client *ClientAuth
		if client, err = a.clientLocked(ctx, d, meta.GrantTypeAuthorizationCode); err == nil {
			tok, err = Authorize(ctx, a.hc, d, &AuthorizeParams{
				Client:      a.withDPoP(client, as),
				RedirectURL: a.cfg.RedirectURL,
				Scope:       scope,
				Handler:     a.cfg.AuthorizationHandler,
			})
		}
	}
	if err != nil {
		return nil, err
	}
	if err := a.store.Save(ctx, a.cfg.ServerURL, tok); err != nil {
		return nil, err
	}
	return tok, nil
}

// clientLocked picks the client identity in the specification's order:
// pre-registered, Client ID Metadata Document, dynamic registration.
func (a *Authorizer) clientLocked(ctx context.Context, d *Discovery, grant string) (*ClientAuth, error) {
	as := d.AuthorizationServer
	if a.cfg.Client != nil && a.cfg.Client.ClientID != "" {
		return a.cfg.Client, nil
	}
	if c, ok := a.registered[d.Issuer]; ok {
		return c, nil
	}
	if grant == meta.GrantTypeAuthorizationCode && a.cfg.ClientIDMetadataURL != "" && as.ClientIDMetadataDocumentSupported {
		c := &ClientAuth{ClientID: a.cfg.ClientIDMetadataURL, Method: meta.AuthMethodNone}
		if a.cfg.Client != nil && a.cfg.Client.PrivateKey != nil {
			k := *a.cfg.Client
			k.ClientID = a.cfg.ClientIDMetadataURL
			k.Method = meta.AuthMethodPrivateKeyJWT
			c = &k
		}
		return c, nil
	}
	if as.RegistrationEndpoint == "" || a.cfg.DisableDynamicRegistration {
		return nil, ErrNoClientIdentity
	}
	md := a.registrationMetadata(as, grant)
	info, err := Register(ctx, a.hc, as.RegistrationEndpoint, md)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: dynamic client registration: %w", err)
	}
	method := info.TokenEndpointAuthMethod
	if method == "" {
		method = md.TokenEndpointAuthMethod
	}
	c := &ClientAuth{ClientID: info.ClientID, Method: method}
	if method != meta.AuthMethodNone {
		c.ClientSecret = info.ClientSecret
	}
	a.registered[d.Issuer] = c
	return c, nil
}

func (a *Authorizer) registrationMetadata(as *meta.AuthorizationServerMetadata, grant string) *meta.ClientMetadata {
	var md meta.ClientMetadata
	if a.cfg.ClientMetadata != nil {
		md = *a.cfg.ClientMetadata
	}
	md.ClientID = ""
	if md.ClientName == "" {
		md.ClientName = "mcpgate"
	}
	if grant == meta.GrantTypeAuthorizationCode {
		if len(md.RedirectURIs) == 0 && a.cfg.RedirectURL != "" {
			md.RedirectURIs = []string{a.cfg.RedirectURL}
		}
		if len(md.GrantTypes) == 0 {
			md.GrantTypes = []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}
		}
		if len(md.ResponseTypes) == 0 {
			md.ResponseTypes = []string{meta.ResponseTypeCode}
		}
	} else if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{grant}
	}
	if md.ApplicationType == "" && len(md.RedirectURIs) > 0 {
		md.ApplicationType = "web"
		if u, err := url.Parse(md.RedirectURIs[0]); err == nil && safehttp.IsLoopbackHost(u.Hostname()) {
			md.ApplicationType = "native"
		}
	}
	if md.TokenEndpointAuthMethod == "" {
		supported := as.TokenEndpointAuthMethodsSupported
		switch {
		case supported == nil || slices.Contains(supported, meta.AuthMethodNone):
			md.TokenEndpointAuthMethod = meta.AuthMethodNone
		case slices.Contains(supported, meta.AuthMethodClientSecretBasic):
			md.TokenEndpointAuthMethod = meta.AuthMethodClientSecretBasic
		case slices.Contains(supported, meta.AuthMethodClientSecretPost):
			md.TokenEndpointAuthMethod = meta.AuthMethodClientSecretPost
		default:
			md.TokenEndpointAuthMethod = supported[0]
		}
	}
	return &md
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func scopeKey(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return strings.Join(slices.Compact(c), " ")
}
