package authserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// keyVerifier checks a JWS signature and returns the payload
// (oidc.KeySet).
type keyVerifier interface {
	VerifySignature(ctx context.Context, jwt string) ([]byte, error)
}

// clockSkew is tolerated on exp, nbf and iat.
const clockSkew = time.Minute

// maxAssertionLifetime bounds how far in the future an assertion's exp
// may be, which bounds the replay cache.
const maxAssertionLifetime = time.Hour

// isMetadataDocumentID reports whether a client_id is a URL naming a
// Client ID Metadata Document.
func isMetadataDocumentID(id string) bool {
	return strings.HasPrefix(id, "https://")
}

// getClient returns a client by id, resolving Client ID Metadata
// Documents. Unknown clients give invalid_client.
func (s *Server) getClient(ctx context.Context, id string) (*store.Client, error) {
	if id == "" {
		return nil, errInvalidClient("client_id is required")
	}
	if isMetadataDocumentID(id) {
		return s.metadataDocumentClient(ctx, id)
	}
	c, err := s.st.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidClient("unknown client %q", id)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func isPublic(c *store.Client) bool {
	return c.TokenEndpointAuthMethod == meta.AuthMethodNone || c.TokenEndpointAuthMethod == ""
}

func usesSecret(c *store.Client) bool {
	return c.TokenEndpointAuthMethod == meta.AuthMethodClientSecretBasic || c.TokenEndpointAuthMethod == meta.AuthMethodClientSecretPost
}

// clientCredentials is what a request offers to authenticate a client.
type clientCredentials struct {
	ClientID, ClientSecret               string
	ClientAssertion, ClientAssertionType string
	HasBasic                             bool
	BasicID, BasicSecret                 string
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request (RFC 6749 §2.3, RFC 7523 §2.2). It returns the
// client and the method used.
func (s *Server) authenticateClient(ctx context.Context, cc clientCredentials) (*store.Client, string, error) {
	n := 0
	if cc.HasBasic {
		n++
	}
	if cc.ClientSecret != "" {
		n++
	}
	if cc.ClientAssertion != "" || cc.ClientAssertionType != "" {
		n++
	}
	if n > 1 {
		return nil, "", errInvalidRequest("more than one client authentication method used")
	}
	switch {
	case cc.HasBasic:
		if cc.ClientID != "" && cc.ClientID != cc.BasicID {
			return nil, "", errInvalidRequest("client_id does not match the Basic credentials")
		}
		c, err := s.checkSecret(ctx, cc.BasicID, cc.BasicSecret)
		return c, meta.AuthMethodClientSecretBasic, err
	case cc.ClientSecret != "":
		c, err := s.checkSecret(ctx, cc.ClientID, cc.ClientSecret)
		return c, meta.AuthMethodClientSecretPost, err
	case cc.ClientAssertion != "" || cc.ClientAssertionType != "":
		c, err := s.checkClientAssertion(ctx, cc.ClientID, cc.ClientAssertion, cc.ClientAssertionType)
		return c, meta.AuthMethodPrivateKeyJWT, err
	}
	if cc.ClientID == "" {
		return nil, "", errInvalidClient("client authentication required")
	}
	c, err := s.getClient(ctx, cc.ClientID)
	if err != nil {
		return nil, "", err
	}
	if !isPublic(c) {
		return nil, "", errInvalidClient("client %q must authenticate with %s", c.ID, c.TokenEndpointAuthMethod)
	}
	if s.opts.DisablePublicClients {
		return nil, "", errInvalidClient("public clients are not accepted by this server")
	}
	return c, meta.AuthMethodNone, nil
}

func (s *Server) checkSecret(ctx context.Context, id, secret string) (*store.Client, error) {
	if id == "" {
		return nil, errInvalidClient("client_id is required with client_secret")
	}
	if isMetadataDocumentID(id) {
		return nil, errInvalidClient("clients identified by a metadata document cannot use a client secret")
	}
	c, err := s.getClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if !usesSecret(c) || c.SecretHash == "" {
		return nil, errInvalidClient("client %q does not authenticate with a client secret", id)
	}
	if subtle.ConstantTimeCompare([]byte(store.Digest(secret)), []byte(c.SecretHash)) != 1 {
		return nil, errInvalidClient("client authentication failed")
	}
	return c, nil
}

// jwtClaims are the registered claims read from assertions.
type jwtClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  jsontext.Value `json:"aud"`
	Expiry    *float64       `json:"exp"`
	IssuedAt  *float64       `json:"iat"`
	NotBefore *float64       `json:"nbf"`
	ID        string         `json:"jti"`
	// ID-JAG claims.
	ClientID string `json:"client_id"`
	Resource string `json:"resource"`
	Scope    string `json:"scope"`
	Email    string `json:"email"`
}

func (c *jwtClaims) audiences() ([]string, error) {
	if len(c.Audience) == 0 {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(c.Audience, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(c.Audience, &many); err != nil {
		return nil, errors.New("aud must be a string or an array of strings")
	}
	return many, nil
}

func unixTime(f *float64) time.Time {
	return time.Unix(int64(*f), 0)
}

// checkTimes validates exp (required), nbf and iat.
func (s *Server) checkTimes(c *jwtClaims, what string) error {
	now := s.now()
	if c.Expiry == nil {
		return fmt.Errorf("%s has no exp claim", what)
	}
	if exp := unixTime(c.Expiry); !exp.Add(clockSkew).After(now) {
		return fmt.Errorf("%s expired at %s", what, exp.UTC().Format(time.RFC3339))
	} else if exp.Sub(now) > maxAssertionLifetime {
		return fmt.Errorf("%s exp is more than %s in the future", what, maxAssertionLifetime)
	}
	if c.NotBefore != nil && unixTime(c.NotBefore).After(now.Add(clockSkew)) {
		return fmt.Errorf("%s is not valid yet (nbf)", what)
	}
	if c.IssuedAt != nil && unixTime(c.IssuedAt).After(now.Add(clockSkew)) {
		return fmt.Errorf("%s was issued in the future (iat)", what)
	}
	return nil
}

// unverifiedClaims decodes a JWT payload without checking its signature,
// to find out which keys to check it with.
func unverifiedClaims(token string, algs []jose.SignatureAlgorithm) (*jose.JSONWebSignature, *jwtClaims, error) {
	jws, err := jose.ParseSigned(token, algs)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed or unsupported JWT: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, errors.New("JWT must have exactly one signature")
	}
	var c jwtClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c, json.RejectUnknownMembers(false)); err != nil {
		return nil, nil, fmt.Errorf("JWT claims: %v", err)
	}
	return jws, &c, nil
}

func algs(names []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		out[i] = jose.SignatureAlgorithm(n)
	}
	return out
}

// checkClientAssertion authenticates a private_key_jwt client (RFC 7523
// §2.2, §3).
func (s *Server) checkClientAssertion(ctx context.Context, clientID, assertion, typ string) (*store.Client, error) {
	if typ != meta.ClientAssertionTypeJWTBearer {
		return nil, errInvalidClient("client_assertion_type must be %s", meta.ClientAssertionTypeJWTBearer)
	}
	if assertion == "" {
		return nil, errInvalidClient("client_assertion is required")
	}
	jws, c, err := unverifiedClaims(assertion, algs(signingAlgs))
	if err != nil {
		return nil, errInvalidClient("client assertion: %v", err)
	}
	if c.Issuer == "" || c.Subject != c.Issuer {
		return nil, errInvalidClient("client assertion: iss and sub must both be the client_id")
	}
	if clientID != "" && clientID != c.Subject {
		return nil, errInvalidClient("client assertion: sub does not match client_id")
	}
	client, err := s.getClient(ctx, c.Subject)
	if err != nil {
		return nil, err
	}
	if client.TokenEndpointAuthMethod != meta.AuthMethodPrivateKeyJWT {
		return nil, errInvalidClient("client %q is not registered for private_key_jwt", client.ID)
	}
	keys, err := s.verifyClientAssertionKey(ctx, client, jws)
	if err != nil {
		return nil, err
	}
	auds, err := c.audiences()
	if err != nil {
		return nil, errInvalidClient("client assertion: %v", err)
	}
	if !slices.Contains(auds, s.issuer) && !slices.Contains(auds, s.endpoint("/token")) {
		return nil, errInvalidClient("client assertion aud must be the issuer %s or the token endpoint", s.issuer)
	}
	if err := s.checkTimes(c, "client assertion"); err != nil {
		return nil, errInvalidClient("%v", err)
	}
	if c.ID == "" {
		return nil, errInvalidClient("client assertion has no jti")
	}
	exp := unixTime(c.Expiry).Add(clockSkew)
	if err := s.st.UseOnce(ctx, "client-assertion:"+client.ID, c.ID, exp, s.now()); err != nil {
		if errors.Is(err, store.ErrReplay) {
			return nil, errInvalidClient("client assertion jti %q was already used", c.ID)
		}
		return nil, err
	}
	// The key that verified must be a fingerprinted key: the gateway
	// records the key set and refuses a changed one when so configured.
	if err := s.reportClientKeys(ctx, keys); err != nil {
		return nil, err
	}
	return client, nil
}
