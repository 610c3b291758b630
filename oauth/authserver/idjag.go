package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

var defaultIdPAlgs = []string{"RS256", "ES256", "PS256", "EdDSA"}

// trustedIssuer returns the configuration of a trusted ID-JAG issuer.
func (s *Server) trustedIssuer(iss string) (*TrustedIssuer, bool) {
	for i := range s.opts.TrustedIssuers {
		if s.opts.TrustedIssuers[i].Issuer == iss {
			return &s.opts.TrustedIssuers[i], true
		}
	}
	return nil, false
}

func (s *Server) issuerKeys(ti *TrustedIssuer) keyVerifier {
	s.idpMu.Lock()
	defer s.idpMu.Unlock()
	kv, ok := s.idpKeys[ti.Issuer]
	if !ok {
		hc := ti.HTTPClient
		if hc == nil {
			hc = http.DefaultClient
		}
		kv = oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), hc), ti.JWKSURL)
		s.idpKeys[ti.Issuer] = kv
	}
	return kv
}

// jwtBearerGrant handles urn:ietf:params:oauth:grant-type:jwt-bearer with
// an Identity Assertion JWT Authorization Grant (ID-JAG), as profiled by
// the MCP enterprise-managed authorization extension.
func (s *Server) jwtBearerGrant(ctx context.Context, client *store.Client, req *TokenRequest) (*grant, error) {
	if req.Assertion == "" {
		return nil, errInvalidRequest("assertion is required")
	}
	jws, c, err := unverifiedClaims(req.Assertion, algs(append(slices.Clone(defaultIdPAlgs), "ES384", "RS384", "RS512", "PS384", "PS512", "ES512")))
	if err != nil {
		return nil, errInvalidGrant("assertion: %v", err)
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); typ != meta.IDJAGJWTType {
		return nil, errInvalidGrant("assertion typ must be %q", meta.IDJAGJWTType)
	}
	ti, ok := s.trustedIssuer(c.Issuer)
	if !ok {
		return nil, errInvalidGrant("assertion issuer is not trusted")
	}
	accepted := ti.Algorithms
	if accepted == nil {
		accepted = defaultIdPAlgs
	}
	if !slices.Contains(accepted, jws.Signatures[0].Header.Algorithm) {
		return nil, errInvalidGrant("assertion alg %q is not accepted for this issuer", jws.Signatures[0].Header.Algorithm)
	}
	payload, err := s.issuerKeys(ti).VerifySignature(ctx, req.Assertion)
	if err != nil {
		return nil, errInvalidGrant("assertion signature is not valid for issuer %s", ti.Issuer)
	}
	auds, err := c.audiences()
	if err != nil {
		return nil, errInvalidGrant("assertion: %v", err)
	}
	if len(auds) != 1 || auds[0] != s.issuer {
		return nil, errInvalidGrant("assertion aud must be exactly this issuer %s", s.issuer)
	}
	if c.ClientID == "" || c.ClientID != client.ID {
		return nil, errInvalidGrant("assertion client_id does not match the authenticated client")
	}
	if c.Subject == "" {
		return nil, errInvalidGrant("assertion has no sub")
	}
	if err := s.checkTimes(c, "assertion"); err != nil {
		return nil, errInvalidGrant("%v", err)
	}
	if c.IssuedAt == nil {
		return nil, errInvalidGrant("assertion has no iat")
	}
	if c.ID == "" {
		return nil, errInvalidGrant("assertion has no jti")
	}
	if c.Resource == "" {
		return nil, errInvalidGrant("assertion has no resource claim; the MCP server must be named")
	}
	if req.Resource != "" && req.Resource != c.Resource {
		return nil, errInvalidTarget("resource parameter differs from the assertion's resource claim")
	}
	res, err := s.checkResource(c.Resource)
	if err != nil {
		return nil, err
	}
	requested := c.Scope
	if req.Scope != "" {
		// The client may narrow, never widen, what the IdP granted.
		idp, _ := splitScope(c.Scope)
		want, err := splitScope(req.Scope)
		if err != nil {
			return nil, err
		}
		for _, sc := range want {
			if !slices.Contains(idp, sc) {
				return nil, errInvalidScope("scope %q was not granted by the identity provider", sc)
			}
		}
		requested = req.Scope
	}
	scopes, err := s.grantScopes(res, client, requested)
	if err != nil {
		return nil, err
	}
	attrs, err := AttributesFromClaims(payload, ti.Issuer, ti.Claims)
	if err != nil {
		return nil, attributesRefused(fmt.Errorf("assertion: %w", err))
	}
	// Replay is checked last so that a refused request does not burn
	// the jti.
	if err := s.st.UseOnce(ctx, "id-jag:"+ti.Issuer, c.ID, unixTime(c.Expiry).Add(clockSkew), s.now()); err != nil {
		if errors.Is(err, store.ErrReplay) {
			return nil, errInvalidGrant("assertion jti %q was already used", c.ID)
		}
		return nil, err
	}
	return &grant{client: client, subject: principal.Federated(ti.Issuer, c.Subject).String(), resource: res.URI, scopes: scopes, attrs: attrs}, nil
}
