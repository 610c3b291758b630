package authserver

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// formClient authenticates the client of a revocation or introspection
// request from its form and Authorization header.
func (s *Server) formClient(ctx context.Context, r *http.Request, form map[string]string) (*store.Client, string, error) {
	cc := clientCredentials{ClientID: form["client_id"], ClientSecret: form["client_secret"],
		ClientAssertion: form["client_assertion"], ClientAssertionType: form["client_assertion_type"]}
	if h := r.Header.Get("Authorization"); h != "" {
		id, secret, err := parseBasic(h)
		if err != nil {
			return nil, "", err
		}
		cc.HasBasic, cc.BasicID, cc.BasicSecret = true, id, secret
	}
	return s.authenticateClient(ctx, cc)
}

// handleRevoke implements RFC 7009. Unknown or foreign tokens get 200, as
// the RFC requires, so that the endpoint cannot be used to probe tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	client, _, err := s.formClient(r.Context(), r, form)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tok := form["token"]
	if tok == "" {
		s.writeError(w, r, errInvalidRequest("token is required"))
		return
	}
	hint := form["token_type_hint"]
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		s.writeError(w, r, oauthErr(http.StatusBadRequest, "unsupported_token_type", "token_type_hint %q is not supported", hint))
		return
	}
	ctx := r.Context()
	if rt, err := s.st.GetRefreshToken(ctx, store.Digest(tok)); err == nil {
		if rt.ClientID == client.ID {
			// Revoking a refresh token revokes its whole grant.
			if _, err := s.st.RevokeFamily(ctx, rt.FamilyID); err != nil {
				s.writeError(w, r, err)
				return
			}
			_ = s.st.RevokeRefreshToken(ctx, rt.TokenHash)
		}
	} else if claims, err := s.parseOwnAccessToken(ctx, tok); err == nil && claims.ClientID == client.ID {
		if err := s.st.RevokeAccessToken(ctx, claims.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeError(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// parseOwnAccessToken verifies an access token issued by this server.
func (s *Server) parseOwnAccessToken(ctx context.Context, tok string) (*AccessTokenClaims, error) {
	if strings.Count(tok, ".") != 2 {
		return nil, errors.New("not a JWT")
	}
	payload, err := s.keys.verify(ctx, tok)
	if err != nil {
		return nil, err
	}
	var c AccessTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	if c.Issuer != s.issuer {
		return nil, errors.New("foreign issuer")
	}
	return &c, nil
}

// IntrospectionResponse is an RFC 7662 response.
type IntrospectionResponse struct {
	// Active is false for unknown, expired, revoked or foreign tokens;
	// the other members are then omitted.
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	ID        string `json:"jti,omitempty"`
	Expiry    int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// handleIntrospect implements RFC 7662 for authenticated confidential
// clients (typically resource servers).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	client, method, err := s.formClient(r.Context(), r, form)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if method == meta.AuthMethodNone {
		s.writeError(w, r, errInvalidClient("introspection requires client authentication"))
		return
	}
	// RFC 7662 §2.1 and §4: only the resource servers the configuration
	// names may introspect; any other client learns nothing about the
	// token, not even whether it is active.
	if !slices.Contains(s.opts.IntrospectionClients, client.ID) {
		s.log.InfoContext(r.Context(), "oauth: introspection refused", "client_id", client.ID)
		s.writeError(w, r, oauthErr(http.StatusForbidden, meta.ErrUnauthorizedClient,
			"client %q is not allowed to introspect tokens (it is not a resource server named in oauth.introspection_clients)", client.ID))
		return
	}
	tok := form["token"]
	if tok == "" {
		s.writeError(w, r, errInvalidRequest("token is required"))
		return
	}
	ctx := r.Context()
	now := s.now()
	inactive := &IntrospectionResponse{Active: false}
	if claims, err := s.parseOwnAccessToken(ctx, tok); err == nil {
		revoked, err := s.st.IsAccessTokenRevoked(ctx, claims.ID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if revoked || now.Unix() >= claims.Expiry {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		writeJSON(w, http.StatusOK, &IntrospectionResponse{Active: true, Scope: claims.Scope, ClientID: claims.ClientID,
			Subject: claims.Subject, Audience: claims.Audience, Issuer: claims.Issuer, ID: claims.ID,
			Expiry: claims.Expiry, IssuedAt: claims.IssuedAt, TokenType: meta.TokenTypeBearer})
		return
	}
	if rt, err := s.st.GetRefreshToken(ctx, store.Digest(tok)); err == nil && rt.ClientID == client.ID &&
		!rt.Revoked && rt.UsedAt.IsZero() && rt.ExpiresAt.After(now) {
		writeJSON(w, http.StatusOK, &IntrospectionResponse{Active: true, Scope: rt.Scope, ClientID: rt.ClientID,
			Subject: rt.Subject, Audience: rt.Resource, Issuer: s.issuer, Expiry: rt.ExpiresAt.Unix(), TokenType: "refresh_token"})
		return
	}
	writeJSON(w, http.StatusOK, inactive)
}
