package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// maxMetadataBytes caps metadata, registration and token response bodies.
const maxMetadataBytes = 256 << 10

// Discovery is the outcome of protected resource and authorization server
// discovery for one MCP server.
type Discovery struct {
	// ServerURL is the MCP server URL discovery was run for.
	ServerURL string
	// ResourceMetadataURL is where the protected resource metadata was
	// found ("" in legacy mode).
	ResourceMetadataURL string
	// ProtectedResource is the protected resource metadata (nil in legacy
	// mode).
	ProtectedResource *meta.ProtectedResourceMetadata
	// Resource is the resource indicator to send: exactly the metadata's
	// resource string, or the server URL in legacy mode.
	Resource string
	// Issuer is the authorization server issuer identifier that was used.
	Issuer string
	// AuthorizationServer is the authorization server metadata. In the
	// 2025-03-26 endpoint fallback it is synthesised, with Synthesized set.
	AuthorizationServer *meta.AuthorizationServerMetadata
	// Synthesized is true when no authorization server metadata was found
	// and the default endpoints at the server root are used.
	Synthesized bool
	// Legacy is true when no protected resource metadata was found and the
	// 2025-03-26 rules were applied.
	Legacy bool
	// Challenge is the Bearer challenge that started discovery, if any.
	Challenge *meta.BearerChallenge
}

// SelectScope applies the specification's scope selection: the challenge's
// scope, else all of the protected resource's scopes_supported, else "".
func (d *Discovery) SelectScope() string {
	if d.Challenge != nil && d.Challenge.Scope != "" {
		return d.Challenge.Scope
	}
	if d.ProtectedResource != nil && len(d.ProtectedResource.ScopesSupported) > 0 {
		return strings.Join(d.ProtectedResource.ScopesSupported, " ")
	}
	return ""
}

// DiscoverOptions tunes Discover.
type DiscoverOptions struct {
	// Legacy20250326 enables the 2025-03-26 fallback when no protected
	// resource metadata is found: authorization server metadata at the MCP
	// server's origin, then /authorize, /token and /register there.
	Legacy20250326 bool
}

// Discover finds the protected resource metadata for serverURL (using the
// challenge's resource_metadata URL when present, else the path-inserted
// and then the root well-known URL), checks that its resource names
// serverURL, and finds the metadata of the first authorization server that
// answers. hc should be an SSRF-safe client (see package safehttp).
func Discover(ctx context.Context, hc *http.Client, serverURL string, challenge *meta.BearerChallenge, opts *DiscoverOptions) (*Discovery, error) {
	if opts == nil {
		opts = &DiscoverOptions{}
	}
	if err := checkServerURL(serverURL); err != nil {
		return nil, err
	}
	d := &Discovery{ServerURL: serverURL, Challenge: challenge}
	prm, prmURL, err := discoverProtectedResource(ctx, hc, serverURL, challenge)
	switch {
	case err == nil:
		d.ProtectedResource = prm
		d.ResourceMetadataURL = prmURL
		d.Resource = prm.Resource
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("%w: protected resource metadata at %s lists no authorization_servers", ErrDiscovery, prmURL)
		}
		var errs []error
		for _, issuer := range prm.AuthorizationServers {
			as, err := FetchAuthorizationServerMetadata(ctx, hc, issuer)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			d.Issuer = issuer
			d.AuthorizationServer = as
			return d, nil
		}
		return nil, errors.Join(append([]error{fmt.Errorf("%w: no authorization server metadata found", ErrDiscovery)}, errs...)...)
	case !opts.Legacy20250326 || !errors.Is(err, errAllNotFound):
		return nil, err
	}
	// 2025-03-26: the MCP server's origin is the authorization server.
	origin, oerr := meta.Origin(serverURL)
	if oerr != nil {
		return nil, oerr
	}
	d.Legacy = true
	d.Resource = serverURL
	d.Issuer = origin
	as, aerr := FetchAuthorizationServerMetadata(ctx, hc, origin)
	if aerr == nil {
		d.AuthorizationServer = as
		return d, nil
	}
	if !errors.Is(aerr, errNotFound) {
		return nil, errors.Join(err, aerr)
	}
	d.Synthesized = true
	d.AuthorizationServer = &meta.AuthorizationServerMetadata{
		Issuer:                        origin,
		AuthorizationEndpoint:         origin + "/authorize",
		TokenEndpoint:                 origin + "/token",
		RegistrationEndpoint:          origin + "/register",
		ResponseTypesSupported:        []string{meta.ResponseTypeCode},
		CodeChallengeMethodsSupported: []string{meta.CodeChallengeMethodS256},
		GrantTypesSupported:           []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
	}
	return d, nil
}

// errNotFound marks "nothing there" (404/410 or similar) as opposed to a
// broken document, so that fallbacks only happen for absent documents.
var errNotFound = errors.New("not found")

// errAllNotFound marks a protected resource metadata lookup where every
// well-known URL answered "not found": only then does the legacy fallback
// apply.
var errAllNotFound = errors.New("no metadata at any well-known URL")

func checkServerURL(serverURL string) error {
	u, err := url.Parse(serverURL)
	if err != nil {
		return fmt.Errorf("oauthclient: server URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("oauthclient: server URL %q must be an absolute http(s) URL", serverURL)
	}
	if u.Fragment != "" {
		return fmt.Errorf("oauthclient: server URL %q must not have a fragment", serverURL)
	}
	return nil
}

func discoverProtectedResource(ctx context.Context, hc *http.Client, serverURL string, ch *meta.BearerChallenge) (*meta.ProtectedResourceMetadata, string, error) {
	if ch != nil && ch.ResourceMetadata != "" {
		prm, err := FetchProtectedResourceMetadata(ctx, hc, ch.ResourceMetadata, serverURL)
		if err != nil {
			return nil, "", err
		}
		return prm, ch.ResourceMetadata, nil
	}
	urls, err := meta.ProtectedResourceMetadataURLs(serverURL)
	if err != nil {
		return nil, "", err
	}
	var errs []error
	allNotFound := true
	for _, u := range urls {
		prm, err := FetchProtectedResourceMetadata(ctx, hc, u, serverURL)
		if err == nil {
			return prm, u, nil
		}
		if errors.Is(err, ErrResourceMismatch) {
			return nil, "", err
		}
		if !errors.Is(err, errNotFound) {
			allNotFound = false
		}
		errs = append(errs, err)
	}
	first := fmt.Errorf("%w: no protected resource metadata for %s", ErrDiscovery, serverURL)
	if allNotFound {
		first = fmt.Errorf("%w (%w)", first, errAllNotFound)
	}
	return nil, "", errors.Join(append([]error{first}, errs...)...)
}

// FetchProtectedResourceMetadata fetches and validates the protected
// resource metadata at metadataURL and checks that its resource names
// serverURL (see ResourceMatches).
func FetchProtectedResourceMetadata(ctx context.Context, hc *http.Client, metadataURL, serverURL string) (*meta.ProtectedResourceMetadata, error) {
	body, err := getJSON(ctx, hc, metadataURL)
	if err != nil {
		return nil, err
	}
	prm, err := meta.ParseProtectedResourceMetadata(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDiscovery, metadataURL, err)
	}
	if !ResourceMatches(prm.Resource, serverURL) {
		return nil, fmt.Errorf("%w: metadata at %s names %q, server is %q", ErrResourceMismatch, metadataURL, prm.Resource, serverURL)
	}
	return prm, nil
}

// ResourceMatches reports whether the protected resource identifier
// resource covers serverURL: same scheme, host and port (compared
// case-insensitively, default ports ignored) and resource's path is
// serverURL's path or a prefix of it ending at a "/" boundary. A trailing
// slash on resource is ignored. Queries must be equal when resource has one.
func ResourceMatches(resource, serverURL string) bool {
	r, err1 := url.Parse(resource)
	s, err2 := url.Parse(serverURL)
	if err1 != nil || err2 != nil || r.Fragment != "" || r.User != nil {
		return false
	}
	ro, err1 := meta.Origin(resource)
	so, err2 := meta.Origin(serverURL)
	if err1 != nil || err2 != nil || ro != so {
		return false
	}
	if r.RawQuery != "" && r.RawQuery != s.RawQuery {
		return false
	}
	rp := strings.TrimSuffix(r.EscapedPath(), "/")
	sp := s.EscapedPath()
	if rp == "" {
		return true
	}
	return sp == rp || sp == rp+"/" || strings.HasPrefix(sp, rp+"/")
}

// FetchAuthorizationServerMetadata looks up the metadata of issuer at the
// well-known URLs in the specification's order (RFC 8414 then OpenID
// Connect, path-inserted, then OpenID Connect path-appended) and checks
// that the document's issuer equals issuer.
func FetchAuthorizationServerMetadata(ctx context.Context, hc *http.Client, issuer string) (*meta.AuthorizationServerMetadata, error) {
	urls, err := meta.AuthorizationServerMetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	allNotFound := true
	for _, u := range urls {
		body, err := getJSON(ctx, hc, u)
		if err != nil {
			if !errors.Is(err, errNotFound) {
				allNotFound = false
			}
			errs = append(errs, err)
			continue
		}
		as, err := meta.ParseAuthorizationServerMetadata(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDiscovery, u, err)
		}
		if err := as.ValidateIssuer(issuer); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrDiscovery, u, err)
		}
		return as, nil
	}
	err = fmt.Errorf("%w: no authorization server metadata for %s", ErrDiscovery, issuer)
	if allNotFound {
		err = fmt.Errorf("%w (%w)", err, errNotFound)
	}
	return nil, errors.Join(append([]error{err}, errs...)...)
}

// getJSON GETs u and returns the body of a 200 response, capped.
func getJSON(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrDiscovery, u, err)
	}
	body, rerr := safehttp.ReadBody(resp, maxMetadataBytes)
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%w: GET %s: HTTP %d", ErrDiscovery, u, resp.StatusCode)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			err = fmt.Errorf("%w (%w)", err, errNotFound)
		}
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrDiscovery, u, rerr)
	}
	return body, nil
}
