package authserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// AccessTokenType is the JWT typ of access tokens (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// AccessTokenClaims are the claims of an access token (RFC 9068 §2.2).
type AccessTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	ID       string `json:"jti"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	// AuthTime is when the user authenticated, if a user did.
	AuthTime int64 `json:"auth_time,omitempty"`
	// The identity attributes of the user (claims "groups", "roles",
	// "email", "name" and "idp"), within the bounds of
	// [principal.Attributes.Normalize]; absent when unknown.
	principal.Attributes
}

// ClientSubject is the sub of tokens a client obtains for itself (client
// credentials).
//
// Deprecated: use [principal.Client].
func ClientSubject(clientID string) string { return principal.Client(clientID).String() }

// FederatedSubject is the sub of a user authenticated by an external
// identity provider (enterprise sign-in or an ID-JAG).
//
// Deprecated: use [principal.Federated].
func FederatedSubject(issuer, sub string) string { return principal.Federated(issuer, sub).String() }

// grant is what a token request resolved to.
type grant struct {
	client   *store.Client
	subject  string
	resource string
	scopes   []string
	family   string // "" for grants without refresh
	refresh  bool   // issue a refresh token
	// rotateFrom is the hash of the refresh token being rotated.
	rotateFrom string
	refreshExp time.Time
	// attrs are the identity attributes an identity provider asserted
	// (IdP set), carried into the tokens; local users' come from the
	// store at issue time.
	attrs principal.Attributes
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.writeError(w, r, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use POST"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil {
		s.writeError(w, r, errInvalidRequest("reading body: %v", err))
		return
	}
	if len(body) > maxFormBytes {
		s.writeError(w, r, oauthErr(http.StatusRequestEntityTooLarge, meta.ErrInvalidRequest, "request body too large"))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/x-www-form-urlencoded") {
		s.writeError(w, r, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded"))
		return
	}
	req, err := ParseTokenRequest(string(body), r.Header.Get("Authorization"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.token(r.Context(), req)
	if err != nil {
		if s.opts.OnEvent != nil {
			e := Event{Kind: "token.refused", ClientID: req.ClientID, GrantType: req.GrantType, Detail: err.Error()}
			var oe *meta.Error
			if errors.As(err, &oe) {
				e.Error, e.Detail = oe.Code, oe.Description
			}
			s.opts.OnEvent(r.Context(), e)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// token runs a parsed token request.
func (s *Server) token(ctx context.Context, req *TokenRequest) (*meta.TokenResponse, error) {
	switch req.GrantType {
	case meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials:
	case meta.GrantTypeJWTBearer:
		if len(s.opts.TrustedIssuers) == 0 {
			return nil, oauthErr(http.StatusBadRequest, meta.ErrUnsupportedGrantType, "the jwt-bearer grant is not enabled (no trusted identity provider)")
		}
	default:
		return nil, oauthErr(http.StatusBadRequest, meta.ErrUnsupportedGrantType, "grant_type %q is not supported", req.GrantType)
	}
	client, method, err := s.authenticateClient(ctx, clientCredentials{
		ClientID: req.ClientID, ClientSecret: req.ClientSecret,
		ClientAssertion: req.ClientAssertion, ClientAssertionType: req.ClientAssertionType,
		HasBasic: req.HasBasic, BasicID: req.BasicID, BasicSecret: req.BasicSecret,
	})
	if err != nil {
		return nil, err
	}
	if !clientMayUse(client, req.GrantType) {
		return nil, errUnauthorizedClient("client %q is not allowed the %s grant", client.ID, req.GrantType)
	}
	if err := s.admitClient(client, req.GrantType); err != nil {
		return nil, err
	}
	var g *grant
	switch req.GrantType {
	case meta.GrantTypeAuthorizationCode:
		g, err = s.codeGrant(ctx, client, req)
	case meta.GrantTypeRefreshToken:
		g, err = s.refreshGrant(ctx, client, req)
	case meta.GrantTypeClientCredentials:
		g, err = s.clientCredentialsGrant(ctx, client, req)
	case meta.GrantTypeJWTBearer:
		g, err = s.jwtBearerGrant(ctx, client, req)
	}
	if err != nil {
		return nil, err
	}
	resp, err := s.issue(ctx, g)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "oauth: token issued", "grant_type", req.GrantType, "client_id", client.ID, "auth_method", method,
		"sub", g.subject, "resource", g.resource, "scope", resp.Scope, "refresh", resp.RefreshToken != "")
	return resp, nil
}

// clientMayUse checks the client's registered grant types.
func clientMayUse(c *store.Client, grantType string) bool {
	gts := c.GrantTypes
	if len(gts) == 0 {
		gts = []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}
	}
	if grantType == meta.GrantTypeClientCredentials && isPublic(c) {
		return false
	}
	if grantType == meta.GrantTypeRefreshToken && slices.Contains(gts, meta.GrantTypeAuthorizationCode) {
		return true
	}
	return slices.Contains(gts, grantType)
}

func (s *Server) codeGrant(ctx context.Context, client *store.Client, req *TokenRequest) (*grant, error) {
	if req.Code == "" {
		return nil, errInvalidRequest("code is required")
	}
	if req.CodeVerifier == "" {
		return nil, errInvalidRequest("code_verifier is required (PKCE)")
	}
	if err := meta.ValidateCodeVerifier(req.CodeVerifier); err != nil {
		return nil, errInvalidGrant("%v", err)
	}
	code, err := s.st.ConsumeAuthCode(ctx, store.Digest(req.Code), s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errInvalidGrant("authorization code is not valid")
	case errors.Is(err, store.ErrConsumed):
		// A replayed code may be stolen: revoke what it yielded
		// (OAuth 2.1 §4.1.3).
		if n, rerr := s.st.RevokeFamily(ctx, code.FamilyID); rerr == nil && n > 0 {
			s.log.WarnContext(ctx, "oauth: authorization code replayed; tokens revoked", "client_id", code.ClientID, "revoked", n)
		}
		return nil, errInvalidGrant("authorization code was already used; tokens issued from it are revoked")
	case err != nil:
		return nil, err
	}
	if code.ClientID != client.ID {
		return nil, errInvalidGrant("authorization code was issued to another client")
	}
	if !code.ExpiresAt.After(s.now()) {
		return nil, errInvalidGrant("authorization code expired")
	}
	if req.RedirectURI != code.RedirectURI {
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !meta.VerifyS256(req.CodeVerifier, code.CodeChallenge) {
		return nil, errInvalidGrant("code_verifier does not match the code_challenge")
	}
	if req.Resource != "" && req.Resource != code.Resource {
		if res, ok := s.resource(req.Resource); !ok || res.URI != code.Resource {
			return nil, errInvalidTarget("resource %q differs from the authorization request's %q", req.Resource, code.Resource)
		}
	}
	attrs, err := decodeAttributes(code.Claims)
	if err != nil {
		return nil, attributesRefused(err)
	}
	return &grant{
		client: client, subject: code.Subject, resource: code.Resource, scopes: strings.Fields(code.Scope),
		family: code.FamilyID, refresh: clientMayUse(client, meta.GrantTypeRefreshToken),
		refreshExp: s.now().Add(s.opts.RefreshTokenTTL), attrs: attrs,
	}, nil
}

func (s *Server) refreshGrant(ctx context.Context, client *store.Client, req *TokenRequest) (*grant, error) {
	if req.RefreshToken == "" {
		return nil, errInvalidRequest("refresh_token is required")
	}
	hash := store.Digest(req.RefreshToken)
	rt, err := s.st.GetRefreshToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("refresh token is not valid")
	}
	if err != nil {
		return nil, err
	}
	if rt.ClientID != client.ID {
		return nil, errInvalidGrant("refresh token was issued to another client")
	}
	if rt.Revoked {
		return nil, errInvalidGrant("refresh token was revoked")
	}
	if !rt.UsedAt.IsZero() {
		n, _ := s.st.RevokeFamily(ctx, rt.FamilyID)
		s.log.WarnContext(ctx, "oauth: refresh token reused; family revoked", "client_id", rt.ClientID, "revoked", n)
		return nil, errInvalidGrant("refresh token was already used; every token of this grant is revoked")
	}
	if !rt.ExpiresAt.After(s.now()) {
		return nil, errInvalidGrant("refresh token expired")
	}
	if req.Resource != "" && req.Resource != rt.Resource {
		return nil, errInvalidTarget("resource %q differs from the grant's %q", req.Resource, rt.Resource)
	}
	granted := strings.Fields(rt.Scope)
	scopes := granted
	if req.Scope != "" {
		want, err := splitScope(req.Scope)
		if err != nil {
			return nil, err
		}
		for _, sc := range want {
			if !slices.Contains(granted, sc) {
				return nil, errInvalidScope("scope %q was not granted originally", sc)
			}
		}
		scopes = want
	}
	attrs, err := decodeAttributes(rt.Claims)
	if err != nil {
		return nil, attributesRefused(err)
	}
	return &grant{client: client, subject: rt.Subject, resource: rt.Resource, scopes: scopes, family: rt.FamilyID,
		refresh: true, rotateFrom: hash, refreshExp: rt.ExpiresAt, attrs: attrs}, nil
}

func (s *Server) clientCredentialsGrant(ctx context.Context, client *store.Client, req *TokenRequest) (*grant, error) {
	res, err := s.checkResource(req.Resource)
	if err != nil {
		return nil, err
	}
	scopes, err := s.grantScopes(res, client, req.Scope)
	if err != nil {
		return nil, err
	}
	return &grant{client: client, subject: principal.Client(client.ID).String(), resource: res.URI, scopes: scopes}, nil
}

// issue mints the access token (and refresh token) for a grant.
func (s *Server) issue(ctx context.Context, g *grant) (*meta.TokenResponse, error) {
	if s.opts.Admit != nil {
		if err := s.opts.Admit(ctx, g.subject, g.client.ID); err != nil {
			return nil, errInvalidGrant("%v", err)
		}
	}
	attrs, err := s.grantAttributes(ctx, g)
	if err != nil {
		return nil, err
	}
	now := s.now()
	exp := now.Add(s.opts.AccessTokenTTL)
	claims := AccessTokenClaims{
		Issuer: s.issuer, Subject: g.subject, Audience: g.resource, ClientID: g.client.ID,
		Scope: sprintScopes(g.scopes), ID: meta.RandomToken(18), IssuedAt: now.Unix(), Expiry: exp.Unix(),
		Attributes: attrs,
	}
	token, err := s.keys.sign(ctx, AccessTokenType, claims)
	if err != nil {
		return nil, err
	}
	// The access token is recorded before the refresh token is rotated,
	// and the rotation checks in its own transaction that the refresh
	// token (and so its grant family) is not revoked. A revocation of the
	// grant racing this refresh therefore either comes first, and the
	// rotation fails, or comes after both records exist, and revokes
	// them: no token outlives its revoked grant.
	if err := s.st.RecordAccessToken(ctx, &store.AccessToken{ID: claims.ID, FamilyID: g.family, ClientID: g.client.ID,
		Subject: g.subject, Resource: g.resource, Scope: claims.Scope, IssuedAt: now, ExpiresAt: exp}); err != nil {
		return nil, fmt.Errorf("recording access token: %w", err)
	}
	var refresh string
	if g.refresh {
		refresh = meta.RandomToken(32)
		next := &store.RefreshToken{TokenHash: store.Digest(refresh), FamilyID: g.family, ClientID: g.client.ID,
			Subject: g.subject, Resource: g.resource, Scope: sprintScopes(g.scopes), Claims: encodeAttributes(g.attrs), ExpiresAt: g.refreshExp}
		var err error
		if g.rotateFrom != "" {
			_, err = s.st.RotateRefreshToken(ctx, g.rotateFrom, next, now)
		} else {
			err = s.st.CreateRefreshToken(ctx, next)
		}
		if err != nil {
			// The access token was never handed out.
			_ = s.st.RevokeAccessToken(context.WithoutCancel(ctx), claims.ID)
			switch {
			case errors.Is(err, store.ErrRevoked):
				return nil, errInvalidGrant("refresh token was revoked")
			case errors.Is(err, store.ErrConsumed):
				// Lost a race with another use of the same token.
				_, _ = s.st.RevokeFamily(ctx, g.family)
				return nil, errInvalidGrant("refresh token was already used; every token of this grant is revoked")
			}
			return nil, err
		}
	}
	s.markUsed(ctx, g.client)
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ctx, Event{Kind: "token.issued", ClientID: g.client.ID, Subject: g.subject, Detail: "token " + claims.ID + " for " + g.resource})
	}
	return &meta.TokenResponse{AccessToken: token, TokenType: meta.TokenTypeBearer, ExpiresIn: int64(s.opts.AccessTokenTTL / time.Second),
		RefreshToken: refresh, Scope: claims.Scope}, nil
}
