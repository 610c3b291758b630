package authserver

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
)

// domainMatch reports whether host equals domain or is under it.
func domainMatch(host, domain string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	domain = strings.ToLower(strings.TrimPrefix(strings.TrimSuffix(domain, "."), "."))
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// checkDomainPolicy applies the allow/deny lists to a document URL.
func (s *Server) checkDomainPolicy(u *url.URL) error {
	p := &s.opts.MetadataDocuments
	host := u.Hostname()
	for _, d := range p.DenyDomains {
		if domainMatch(host, d) {
			return errInvalidClient("client metadata documents from %s are not accepted", host)
		}
	}
	if len(p.AllowDomains) > 0 {
		for _, d := range p.AllowDomains {
			if domainMatch(host, d) {
				return nil
			}
		}
		return errInvalidClient("client metadata documents from %s are not accepted (not on the allow list)", host)
	}
	return nil
}

// metadataDocumentClient resolves a client whose client_id is the URL of
// its Client ID Metadata Document: from the cache if fresh, otherwise by
// fetching it. Fetch errors are never cached.
func (s *Server) metadataDocumentClient(ctx context.Context, id string) (*store.Client, error) {
	return s.resolveMetadataDocument(ctx, id, false)
}

// resolveMetadataDocument is metadataDocumentClient; refresh fetches the
// document even if the cached copy is fresh.
func (s *Server) resolveMetadataDocument(ctx context.Context, id string, refresh bool) (*store.Client, error) {
	if err := meta.ValidateClientIDMetadataURL(id); err != nil {
		return nil, errInvalidClient("%v", err)
	}
	u, _ := url.Parse(id)
	if err := s.checkDomainPolicy(u); err != nil {
		return nil, err
	}
	// A closed path or an allow list refuses before any fetch, except a
	// client an administrator approved.
	if pol := &s.opts.MetadataDocuments.Admission; mode(pol) == AdmissionClosed || (mode(pol) == AdmissionAllowlist && !allowListMatches(pol.Allow, id)) {
		if c, err := s.st.GetClient(ctx, id); err != nil || c.Kind != store.ClientMetadataDocument || c.Status != store.ClientApproved {
			if mode(pol) == AdmissionClosed {
				return nil, errInvalidClient("client ID metadata documents are not accepted by this server")
			}
			return nil, errInvalidClient("client ID metadata documents from %s are not accepted by this server (not on the allow list)", u.Host)
		}
	}
	now := s.now()
	if doc, err := s.st.GetMetadataDocument(ctx, id); err == nil && doc.ExpiresAt.After(now) && !refresh {
		if c, err := s.st.GetClient(ctx, id); err == nil && c.Kind == store.ClientMetadataDocument && c.Metadata == doc.Body {
			return c, nil
		}
	}
	body, ttl, err := s.fetchJSON(ctx, "client metadata document", id, s.opts.MetadataDocuments.MaxBytes)
	if err != nil {
		s.log.InfoContext(ctx, "oauth: client metadata document refused", "client_id", id, "err", err)
		return nil, err
	}
	cm, err := meta.ParseClientMetadata(body)
	if err != nil {
		return nil, errInvalidClient("client metadata document is not valid JSON: %v", err)
	}
	if err := cm.ValidateClientIDMetadataDocument(id); err != nil {
		return nil, errInvalidClient("%v", err)
	}
	for _, ru := range cm.RedirectURIs {
		if err := checkRedirectURISyntax(ru); err != nil {
			return nil, errInvalidClient("client metadata document: %v", asOAuthError(err).Description)
		}
	}
	method := cm.TokenEndpointAuthMethod
	if method == "" {
		method = meta.AuthMethodNone
	}
	if method != meta.AuthMethodNone && method != meta.AuthMethodPrivateKeyJWT {
		return nil, errInvalidClient("client metadata document: token_endpoint_auth_method %q is not supported", method)
	}
	if method == meta.AuthMethodPrivateKeyJWT && len(cm.JWKS) == 0 && cm.JWKSURI == "" {
		return nil, errInvalidClient("client metadata document: private_key_jwt needs jwks or jwks_uri")
	}
	if cm.JWKSURI != "" {
		if err := meta.ValidateClientIDMetadataURL(cm.JWKSURI); err != nil {
			return nil, errInvalidClient("client metadata document: jwks_uri: %v", err)
		}
	}
	grants := cm.GrantTypes
	for _, g := range grants {
		switch g {
		case meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeJWTBearer:
		case meta.GrantTypeClientCredentials:
			if method == meta.AuthMethodNone {
				return nil, errInvalidClient("client metadata document: client_credentials needs private_key_jwt")
			}
		default:
			return nil, errInvalidClient("client metadata document: grant type %q is not supported", g)
		}
	}
	c := &store.Client{
		ID: id, Kind: store.ClientMetadataDocument, Name: cm.ClientName, RedirectURIs: cm.RedirectURIs,
		GrantTypes: grants, TokenEndpointAuthMethod: method, Scope: cm.Scope, JWKS: string(cm.JWKS), JWKSURI: cm.JWKSURI,
		Metadata: string(body), CreatedAt: now, Status: s.newClientStatus(store.ClientMetadataDocument),
	}
	doc, err := s.st.PutMetadataDocument(ctx, &store.MetadataDocument{URL: id, Body: string(body), Digest: store.Digest(string(body)), FetchedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return nil, err
	}
	if doc.ChangedAt.Equal(now) && doc.PreviousDigest != "" {
		s.log.WarnContext(ctx, "oauth: client metadata document changed", "client_id", id, "previous_digest", doc.PreviousDigest, "digest", doc.Digest)
	}
	if s.opts.OnClientMetadata != nil {
		if err := s.opts.OnClientMetadata(ctx, id, body); err != nil {
			return nil, errInvalidClient("%v", err)
		}
	}
	if err := s.st.PutClient(ctx, c); err != nil {
		return nil, err
	}
	// The stored record keeps an earlier decision and first use.
	return s.st.GetClient(ctx, id)
}

// fetchJSON GETs a client metadata document or a jwks_uri key set (what
// names it in errors) with the SSRF-safe client: no redirects, a size cap
// and a timeout. It returns the cache lifetime allowed by the response's
// Cache-Control, bounded by the policy.
func (s *Server) fetchJSON(ctx context.Context, what, u string, maxBytes int64) ([]byte, time.Duration, error) {
	p := &s.opts.MetadataDocuments
	ctx, cancel := context.WithTimeout(ctx, p.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, errInvalidClient("%s URL: %v", what, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	hc := *s.cimd
	// Never follow redirects, whatever client was configured.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		var be *safehttp.BlockedError
		if errors.As(err, &be) {
			return nil, 0, errInvalidClient("%s host resolves to a refused address (%s)", what, be.Reason)
		}
		return nil, 0, errInvalidClient("fetching %s failed: %v", what, redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, 0, errInvalidClient("%s URL redirects (HTTP %d); redirects are not followed", what, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, errInvalidClient("fetching %s: HTTP %d", what, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, 0, errInvalidClient("%s Content-Type must be application/json", what)
	}
	body, err := safehttp.ReadLimited(resp.Body, maxBytes)
	if err != nil {
		if errors.Is(err, safehttp.ErrBodyTooLarge) {
			return nil, 0, errInvalidClient("%s is larger than %d bytes", what, maxBytes)
		}
		return nil, 0, errInvalidClient("reading %s: %v", what, err)
	}
	return body, cacheLifetime(resp.Header, p.MinCache, p.MaxCache), nil
}

// cacheLifetime reads max-age / no-store / no-cache from Cache-Control
// and clamps it to [min, max]; no-store and no-cache mean 0.
func cacheLifetime(h http.Header, min, max time.Duration) time.Duration {
	ttl := min
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(k) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.Atoi(strings.Trim(v, `"`))
			if err != nil || n < 0 {
				continue
			}
			ttl = time.Duration(n) * time.Second
		}
	}
	if ttl < min {
		ttl = min
	}
	if ttl > max {
		ttl = max
	}
	return ttl
}

// redactURLError drops the URL prefix from a *url.Error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s", ue.Err)
	}
	return err
}
