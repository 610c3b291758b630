// Package upstreamauth gives the gateway OAuth credentials toward its
// upstream MCP servers.
//
// "oauth_client_credentials": the gateway is an OAuth client of the
// upstream's authorization server in its own name. The token endpoint is
// discovered from the upstream's 401 challenge (protected resource
// metadata, then authorization server metadata), or is token_url when set.
// One token serves every principal; it is cached in memory and replaced
// when it expires or the upstream rejects it.
//
// "oauth_user": every principal authorizes the gateway at the upstream's
// authorization server themselves. A principal without a token gets, for
// any request that needs the upstream, a URLElicitationRequiredError
// (-32042) pointing at the gateway's connect page
// (<base>/upstream-auth/<elicitation id>). That page checks that the
// browser belongs to the principal the elicitation was made for, binds
// the browser to the flow with a cookie and redirects to the upstream's
// authorization endpoint (authorization code with PKCE; the gateway's
// client is the configured client_id, else a Client ID Metadata Document
// when the gateway's public URL is https, else dynamic registration). The
// callback (<base>/upstream-auth/callback) checks state, the browser
// cookie and the user again, exchanges the code, stores the tokens sealed
// with AES-256-GCM per (principal, upstream), and tells the gateway
// (Hooks.OnAuthorized), which tells the principal's sessions. Refresh
// tokens are used when the access token expires; when refreshing fails,
// the principal is asked again.
//
// "enterprise" (Cross App Access): every principal's token is obtained
// without consent screen, through the enterprise identity provider that
// signed the principal in: the ID token of that sign-in (kept sealed with
// KeepAssertion) is exchanged at the provider for an ID-JAG (RFC 8693),
// and the ID-JAG for the token at the upstream's authorization server
// (RFC 7523). See enterprise.go.
//
// The package knows upstreams only by a small descriptor (Upstream) and
// asks the gateway for what it needs through Hooks.
package upstreamauth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store"
)

const (
	// elicitationTTL bounds an upstream authorization from the
	// elicitation to the callback.
	elicitationTTL = 10 * time.Minute
	// minElicitationLeft is the least time an elicitation must have left
	// to be handed out again (rather than a new one).
	minElicitationLeft = 2 * time.Minute
)

// Upstream describes the upstream a request is for: what this package
// needs to know of it.
type Upstream struct {
	// Name is the upstream's configured name; tokens and cached state
	// are kept by it.
	Name string
	// URL is the upstream's MCP endpoint; tokens are sent only to its
	// origin, and per-user tokens must be for it as a resource.
	URL string
	// Credentials are the upstream's configured credentials, of type
	// "oauth_client_credentials", "oauth_user" or "enterprise".
	Credentials *config.Credentials
	// Logger receives what concerns the upstream. Nil means the service's
	// logger.
	Logger *slog.Logger
}

// PerUser reports whether credentials are each principal's own: type
// "oauth_user" (the principal's consent) or "enterprise" (the principal's
// identity provider vouching).
func PerUser(cr *config.Credentials) bool { return cr.PerUser() }

// Hooks are what the service needs from the gateway.
type Hooks struct {
	// OnAuthorized is called once principal has authorized the gateway
	// at up, completing the URL elicitation elicitationID: the gateway
	// lets the principal's sessions use the upstream at once and tells
	// them. Nil does nothing.
	OnAuthorized func(principal string, up Upstream, elicitationID string)
	// BrowserPrincipal says who the user of a browser request to the
	// connect and callback pages is, or why that cannot be told. Nil
	// means it cannot be told, and no per-user authorization completes.
	// SessionCookiePrincipal makes one for the built-in authorization
	// server.
	BrowserPrincipal func(r *http.Request) (string, error)
	// OnExchange is told every step of obtaining enterprise tokens
	// (asked, granted, refreshed, refused), for the audit log. Nil does
	// nothing.
	OnExchange func(ctx context.Context, ev ExchangeEvent)
}

// Options configure a Service.
type Options struct {
	// PerUser says that some upstream's credentials are "oauth_user" or
	// "enterprise".
	// Without it the service keeps no tokens, needs no key and serves
	// no pages: only client credentials work.
	PerUser bool
	// KeyPath is the file holding the key that seals per-user tokens
	// (created on first use; see KeyFile). "" means a key that ends with
	// the process.
	KeyPath string
	// Tokens keeps the sealed per-user tokens. Nil means memory, until
	// the process ends.
	Tokens store.UpstreamTokenStore
	// BaseURL is the URL under which the connect and callback pages are
	// served, as <BaseURL>/upstream-auth/...: the built-in authorization
	// server's issuer when there is one (so that the browser sends its
	// session cookie), else the gateway's public URL. "" means per-user
	// authorization cannot be offered.
	BaseURL string
	// HTTPClient is the base client for probing upstreams for their
	// authorization server. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives the service's log. Nil discards it.
	Logger *slog.Logger
	// Done, when closed, ends the service's background work (flows
	// waiting for a callback). Nil means never.
	Done <-chan struct{}
	// Hooks are what the service needs from the gateway.
	Hooks Hooks
}

// Service holds OAuth credentials toward upstreams: the gateway's own
// tokens (client credentials) and each principal's tokens (per-user
// authorization, with its flows and pages).
type Service struct {
	hooks   Hooks
	logger  *slog.Logger
	httpc   *http.Client
	done    <-chan struct{}
	tokens  store.UpstreamTokenStore // nil unless Options.PerUser
	sealer  *Sealer
	base    string // URL of the connect pages, no trailing slash
	path    string // its path
	perUser bool

	refreshMu sync.Mutex // serialises refreshes of per-user tokens

	mu      sync.Mutex
	asHTTP  map[string]*http.Client             // by upstream name: for its authorization server
	disc    map[string]*oauthclient.Discovery   // by upstream name
	clients map[string]*oauthclient.ClientAuth  // registered clients, by upstream name
	cc      map[string]*clientCredentialsSource // by upstream name
	flows   map[string]*authFlow                // by elicitation id
	byState map[string]*authFlow                // by OAuth state, once known
	pending map[[2]string]*authFlow             // by (principal, upstream)

	entLocks map[[2]string]*sync.Mutex // enterprise exchanges, by (principal, upstream)
}

// New returns a Service. It never fails: problems are reported when an
// upstream needs them.
func New(opts *Options) *Service {
	if opts == nil {
		opts = &Options{}
	}
	s := &Service{
		hooks:   opts.Hooks,
		logger:  opts.Logger,
		httpc:   opts.HTTPClient,
		done:    opts.Done,
		sealer:  NewSealer(opts.KeyPath),
		perUser: opts.PerUser,
		asHTTP:  make(map[string]*http.Client),
		disc:    make(map[string]*oauthclient.Discovery),
		clients: make(map[string]*oauthclient.ClientAuth),
		cc:      make(map[string]*clientCredentialsSource),
		flows:   make(map[string]*authFlow),
		byState: make(map[string]*authFlow),
		pending: make(map[[2]string]*authFlow),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.httpc == nil {
		s.httpc = http.DefaultClient
	}
	if !opts.PerUser {
		return s
	}
	if opts.KeyPath == "" {
		s.logger.Warn("no data directory: per-user upstream tokens are sealed with a key that ends with the process")
	}
	s.tokens = opts.Tokens
	if s.tokens == nil {
		s.logger.Warn("the store cannot keep per-user upstream tokens; they are kept in memory until the gateway stops")
		s.tokens = store.NewUpstreamTokensMemory()
	}
	if base := strings.TrimRight(opts.BaseURL, "/"); base != "" {
		s.base = base + "/upstream-auth"
		if pu, err := url.Parse(s.base); err == nil {
			s.path = pu.EscapedPath()
		}
	}
	return s
}

// Tokens returns the store of the sealed per-user tokens (nil without
// Options.PerUser). Sealer opens them.
func (s *Service) Tokens() store.UpstreamTokenStore { return s.tokens }

// HTTPClient returns the client for requests to up on behalf of
// principal: base with the gateway's own token (client credentials) or
// the principal's (per-user) added to every request for up's origin.
// When the principal has not authorized the gateway at up, the error is
// a URLElicitationRequiredError (see ElicitationRequired).
func (s *Service) HTTPClient(ctx context.Context, up Upstream, base *http.Client, principal string) (*http.Client, error) {
	up = s.described(up)
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	if up.Credentials == nil {
		return nil, fmt.Errorf("upstream %s: no OAuth credentials", up.Name)
	}
	switch up.Credentials.Type {
	case config.CredentialsOAuthClientCredentials:
		c.Transport = &clientCredentialsTransport{base: transportOf(base), src: s.clientCredentials(up), origin: originOf(up.URL)}
		return &c, nil
	case config.CredentialsOAuthUser:
		if s.tokens == nil {
			return nil, fmt.Errorf("upstream %s: per-user authorization is not set up", up.Name)
		}
		tok, err := s.loadToken(ctx, up, principal)
		if err != nil {
			return nil, err
		}
		if tok == nil {
			return nil, s.ElicitationRequired(ctx, up, principal)
		}
		c.Transport = &userTokenTransport{base: transportOf(base), s: s, up: up, principal: principal, origin: originOf(up.URL), tk: tok}
		return &c, nil
	case config.CredentialsEnterprise:
		if s.tokens == nil {
			return nil, fmt.Errorf("upstream %s: enterprise credentials are not set up", up.Name)
		}
		// The token is obtained now, so that a refusal fails the
		// session with the identity provider's decision.
		tok, err := s.enterpriseToken(ctx, up, principal, nil, "")
		if err != nil {
			return nil, err
		}
		c.Transport = &enterpriseTransport{base: transportOf(base), s: s, up: up, principal: principal, origin: originOf(up.URL), tk: tok}
		return &c, nil
	}
	return nil, fmt.Errorf("upstream %s: unknown OAuth credentials type %q", up.Name, up.Credentials.Type)
}

// Forget drops the principal's stored token for up, if up is per-user:
// the next request asks the principal to authorize again.
func (s *Service) Forget(ctx context.Context, up Upstream, principal string) error {
	if s.tokens == nil || !PerUser(up.Credentials) {
		return nil
	}
	return s.tokens.DeleteUpstreamToken(ctx, principal, up.Name)
}

// described fills in up's logger.
func (s *Service) described(up Upstream) Upstream {
	if up.Logger == nil {
		up.Logger = s.logger.With("upstream", up.Name)
	}
	return up
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}
