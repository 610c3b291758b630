package authserver

import (
	"context"
	"crypto/subtle"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// maxRegistrationBytes caps a registration request.
const maxRegistrationBytes = 16 << 10

func errClientMetadata(format string, args ...any) *meta.Error {
	return oauthErr(http.StatusBadRequest, meta.ErrInvalidClientMetadata, format, args...)
}

// handleRegister implements RFC 7591 dynamic client registration.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeError(w, r, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use POST"))
		return
	}
	pol := &s.opts.Registration
	if s.pathClosed(store.ClientDynamic) {
		s.writeError(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied,
			"dynamic client registration is closed on this server; ask an administrator to pre-register the client, or use a client ID metadata document if the server accepts them"))
		return
	}
	if ok, wait := s.regLimit.allow(sourceAddress(r), s.now()); !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		s.log.InfoContext(r.Context(), "oauth: registration rate limited", "source", sourceAddress(r))
		s.writeError(w, r, oauthErr(http.StatusTooManyRequests, meta.ErrTemporarilyUnavailable,
			"too many client registrations from your address; try again in %s seconds", retryAfter(wait)))
		return
	}
	if pol.InitialAccessToken != "" {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(pol.InitialAccessToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, oauthErr(http.StatusUnauthorized, meta.ErrInvalidToken, "a valid initial access token is required to register"))
			return
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.writeError(w, r, errInvalidRequest("Content-Type must be application/json"))
		return
	}
	limit := pol.MaxMetadataBytes
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil || len(body) > limit {
		s.writeError(w, r, errClientMetadata("the registration request is larger than %d bytes, the most this server accepts", limit))
		return
	}
	cm, err := meta.ParseClientMetadata(body)
	if err != nil {
		s.writeError(w, r, errClientMetadata("%v", err))
		return
	}
	c, secret, err := s.registerClient(cm, string(body))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.opts.OnClientMetadata != nil {
		if err := s.opts.OnClientMetadata(r.Context(), c.ID, body); err != nil {
			s.writeError(w, r, errClientMetadata("%v", err))
			return
		}
	}
	if err := s.createDynamicClient(r.Context(), c); err != nil {
		if oe := asOAuthError(err); oe.StatusCode == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "3600")
		}
		s.writeError(w, r, err)
		return
	}
	if s.opts.OnEvent != nil {
		detail := c.Name
		if c.Status == store.ClientPending {
			detail += " (pending: " + approveHint(c.ID) + ")"
		}
		s.opts.OnEvent(r.Context(), Event{Kind: "client.registered", ClientID: c.ID, Detail: detail})
	}
	out := meta.ClientInformation{ClientMetadata: *cm, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt.Unix()}
	out.ClientID = c.ID
	out.TokenEndpointAuthMethod = c.TokenEndpointAuthMethod
	out.GrantTypes = c.GrantTypes
	out.ResponseTypes = []string{meta.ResponseTypeCode}
	out.Unknown = nil
	s.log.InfoContext(r.Context(), "oauth: client registered", "client_id", c.ID, "client_name", c.Name, "status", c.Status, "source", sourceAddress(r))
	writeJSON(w, http.StatusCreated, &out)
}

// createDynamicClient stores a new dynamically registered client within
// the storage bound.
func (s *Server) createDynamicClient(ctx context.Context, c *store.Client) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if max := s.opts.Registration.MaxClients; max > 0 {
		n, err := s.st.CountClients(ctx, store.ClientDynamic)
		if err != nil {
			return err
		}
		if n >= max {
			s.log.WarnContext(ctx, "oauth: registration refused: storage bound reached", "max_clients", max)
			return oauthErr(http.StatusServiceUnavailable, meta.ErrTemporarilyUnavailable,
				"this server holds the most dynamically registered clients it accepts (%d); registrations never used are collected after %s", max, s.opts.Registration.UnusedClientTTL)
		}
	}
	return s.st.CreateClient(ctx, c)
}

// registerClient validates registration metadata and builds the client
// record; it returns the new secret for secret-based clients.
func (s *Server) registerClient(cm *meta.ClientMetadata, raw string) (*store.Client, string, error) {
	pol := &s.opts.Registration
	if cm.ClientID != "" {
		return nil, "", errClientMetadata("client_id is assigned by the server")
	}
	method := cm.TokenEndpointAuthMethod
	if method == "" {
		// RFC 7591 §2 defaults to client_secret_basic; MCP clients that
		// omit it are overwhelmingly public clients, but follow the RFC.
		method = meta.AuthMethodClientSecretBasic
	}
	switch method {
	case meta.AuthMethodNone:
		if s.opts.DisablePublicClients {
			return nil, "", errClientMetadata("public clients are not accepted by this server")
		}
	case meta.AuthMethodClientSecretBasic, meta.AuthMethodClientSecretPost, meta.AuthMethodPrivateKeyJWT:
		if !pol.AllowConfidential && method == meta.AuthMethodPrivateKeyJWT {
			return nil, "", errClientMetadata("dynamic registration of private_key_jwt clients is not allowed here")
		}
	default:
		return nil, "", errClientMetadata("token_endpoint_auth_method %q is not supported", method)
	}
	if method == meta.AuthMethodPrivateKeyJWT && len(cm.JWKS) == 0 && cm.JWKSURI == "" {
		return nil, "", errClientMetadata("private_key_jwt needs jwks or jwks_uri")
	}
	grants := cm.GrantTypes
	if len(grants) == 0 {
		grants = []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}
	}
	allowed := s.pathGrants(store.ClientDynamic)
	for _, g := range grants {
		switch g {
		case meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials, meta.GrantTypeJWTBearer:
		default:
			return nil, "", errClientMetadata("grant type %q is not supported", g)
		}
		if !slices.Contains(allowed, g) {
			return nil, "", errClientMetadata("grant type %q is not allowed for dynamically registered clients here (allowed: %s)", g, strings.Join(allowed, ", "))
		}
		if g == meta.GrantTypeClientCredentials && method == meta.AuthMethodNone {
			return nil, "", errClientMetadata("the client_credentials grant needs a confidential client (token_endpoint_auth_method other than none)")
		}
	}
	for _, rt := range cm.ResponseTypes {
		if rt != meta.ResponseTypeCode {
			return nil, "", errClientMetadata("response type %q is not supported; only code", rt)
		}
	}
	needsRedirect := slices.Contains(grants, meta.GrantTypeAuthorizationCode)
	if needsRedirect && len(cm.RedirectURIs) == 0 {
		return nil, "", oauthErr(http.StatusBadRequest, meta.ErrInvalidRedirectURI, "redirect_uris is required for the authorization_code grant")
	}
	for _, ru := range cm.RedirectURIs {
		if err := checkRedirectURISyntax(ru); err != nil {
			return nil, "", oauthErr(http.StatusBadRequest, meta.ErrInvalidRedirectURI, "%s", asOAuthError(err).Description)
		}
		u, _ := url.Parse(ru)
		if len(pol.AllowedRedirectHosts) > 0 && !isLoopbackRedirectHost(u.Hostname()) &&
			!slices.ContainsFunc(pol.AllowedRedirectHosts, func(d string) bool { return domainMatch(u.Hostname(), d) }) {
			return nil, "", oauthErr(http.StatusBadRequest, meta.ErrInvalidRedirectURI, "redirect host %q is not allowed for dynamic registration", u.Hostname())
		}
	}
	if cm.Scope != "" {
		if _, err := splitScope(cm.Scope); err != nil {
			return nil, "", errClientMetadata("invalid scope")
		}
	}
	if len(cm.ClientName) > 200 {
		return nil, "", errClientMetadata("client_name is too long")
	}
	c := &store.Client{
		ID: "dyn-" + meta.RandomToken(16), Kind: store.ClientDynamic, Name: cm.ClientName, RedirectURIs: cm.RedirectURIs,
		GrantTypes: grants, TokenEndpointAuthMethod: method, Scope: cm.Scope, JWKS: string(cm.JWKS), JWKSURI: cm.JWKSURI,
		Metadata: raw, CreatedAt: s.now(), Status: s.newClientStatus(store.ClientDynamic),
	}
	if mode(&pol.Admission) == AdmissionAllowlist && !s.allowlisted(c) {
		if len(c.RedirectURIs) == 0 {
			return nil, "", errClientMetadata("this server accepts dynamic registrations only for allowed redirect URIs, and the request has none")
		}
		return nil, "", oauthErr(http.StatusBadRequest, meta.ErrInvalidRedirectURI, "the redirect URIs are not all on this server's allow list for dynamic registration")
	}
	var secret string
	if method == meta.AuthMethodClientSecretBasic || method == meta.AuthMethodClientSecretPost {
		secret = meta.RandomToken(32)
		c.SecretHash = store.Digest(secret)
	}
	return c, secret, nil
}
