package oauthclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// ClientAuth is a client identity and how it authenticates at the token
// endpoint.
type ClientAuth struct {
	// ClientID is the client identifier (for a Client ID Metadata Document,
	// its URL).
	ClientID string
	// ClientSecret is the shared secret for client_secret_basic and
	// client_secret_post.
	ClientSecret string
	// Method is the token endpoint authentication method (meta.AuthMethod*).
	// Empty means choose: private_key_jwt with a PrivateKey,
	// client_secret_basic or client_secret_post (as advertised) with a
	// secret, else none.
	Method string
	// PrivateKey signs private_key_jwt assertions: an *ecdsa.PrivateKey,
	// *rsa.PrivateKey, ed25519.PrivateKey or a jose.JSONWebKey holding one.
	PrivateKey any
	// SigningAlgorithm is the JWS algorithm, e.g. "ES256"; empty means the
	// natural one for the key (ES256/ES384/ES512 by curve, RS256, EdDSA).
	SigningAlgorithm string
	// KeyID is put in the assertion's "kid" header when set.
	KeyID string
	// AssertionAudience overrides the "aud" of private_key_jwt assertions;
	// the default is the authorization server's issuer identifier.
	AssertionAudience string
	// AssertionLifetime is the assertion validity; default 5 minutes.
	AssertionLifetime time.Duration
	// DPoP, when set, adds a DPoP proof to every token request so that the
	// server may issue a DPoP-bound token (RFC 9449 §5); use-dpop-nonce
	// challenges are answered once with the server's nonce.
	DPoP *DPoPSigner
}

// String describes the client without secrets.
func (c *ClientAuth) String() string {
	return fmt.Sprintf("ClientAuth{client_id=%q method=%s secret=%t key=%t}", c.ClientID, c.Method, c.ClientSecret != "", c.PrivateKey != nil)
}

// resolveMethod picks the authentication method for as.
func (c *ClientAuth) resolveMethod(as *meta.AuthorizationServerMetadata) string {
	if c.Method != "" {
		return c.Method
	}
	switch {
	case c.PrivateKey != nil:
		return meta.AuthMethodPrivateKeyJWT
	case c.ClientSecret != "":
		if as != nil && as.TokenEndpointAuthMethodsSupported != nil &&
			!slices.Contains(as.TokenEndpointAuthMethodsSupported, meta.AuthMethodClientSecretBasic) &&
			slices.Contains(as.TokenEndpointAuthMethodsSupported, meta.AuthMethodClientSecretPost) {
			return meta.AuthMethodClientSecretPost
		}
		return meta.AuthMethodClientSecretBasic
	default:
		return meta.AuthMethodNone
	}
}

// apply adds client authentication to a token request.
func (c *ClientAuth) apply(form url.Values, h http.Header, as *meta.AuthorizationServerMetadata, now time.Time) error {
	if c.ClientID == "" {
		if c.resolveMethod(as) == meta.AuthMethodNone {
			return nil // no client identification at all (e.g. a bare jwt-bearer grant)
		}
		return errors.New("oauthclient: client authentication: missing client_id")
	}
	switch m := c.resolveMethod(as); m {
	case meta.AuthMethodNone:
		form.Set("client_id", c.ClientID)
	case meta.AuthMethodClientSecretBasic:
		if c.ClientSecret == "" {
			return errors.New("oauthclient: client_secret_basic needs a client secret")
		}
		// RFC 6749 §2.3.1: both parts are form-urlencoded first.
		h.Set("Authorization", "Basic "+basicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret)))
	case meta.AuthMethodClientSecretPost:
		if c.ClientSecret == "" {
			return errors.New("oauthclient: client_secret_post needs a client secret")
		}
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	case meta.AuthMethodPrivateKeyJWT:
		aud := c.AssertionAudience
		if aud == "" && as != nil {
			aud = as.Issuer
		}
		if aud == "" {
			return errors.New("oauthclient: private_key_jwt: unknown audience")
		}
		assertion, err := c.signAssertion(aud, now)
		if err != nil {
			return err
		}
		form.Set("client_assertion_type", meta.ClientAssertionTypeJWTBearer)
		form.Set("client_assertion", assertion)
	default:
		return fmt.Errorf("oauthclient: unsupported token endpoint auth method %q", m)
	}
	return nil
}

func basicAuth(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// signAssertion builds a private_key_jwt client assertion (RFC 7523 §3):
// iss and sub are the client_id, aud the authorization server, with a
// random jti and a short lifetime.
func (c *ClientAuth) signAssertion(aud string, now time.Time) (string, error) {
	if c.PrivateKey == nil {
		return "", errors.New("oauthclient: private_key_jwt needs a private key")
	}
	alg := c.SigningAlgorithm
	if alg == "" {
		var err error
		if alg, err = DefaultSigningAlgorithm(c.PrivateKey); err != nil {
			return "", err
		}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if c.KeyID != "" {
		opts = opts.WithHeader("kid", c.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: c.PrivateKey}, opts)
	if err != nil {
		return "", fmt.Errorf("oauthclient: private_key_jwt signer: %w", err)
	}
	life := c.AssertionLifetime
	if life <= 0 {
		life = 5 * time.Minute
	}
	claims := jwt.Claims{
		Issuer:   c.ClientID,
		Subject:  c.ClientID,
		Audience: jwt.Audience{aud},
		ID:       meta.RandomToken(16),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(life)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oauthclient: private_key_jwt: %w", err)
	}
	return s, nil
}

// DefaultSigningAlgorithm returns the JWS algorithm conventionally used
// with key: ES256/ES384/ES512 by curve, RS256 for RSA, EdDSA for Ed25519.
func DefaultSigningAlgorithm(key any) (string, error) {
	if jwk, ok := key.(jose.JSONWebKey); ok {
		key = jwk.Key
	} else if jwk, ok := key.(*jose.JSONWebKey); ok {
		key = jwk.Key
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return string(jose.ES256), nil
		case elliptic.P384():
			return string(jose.ES384), nil
		case elliptic.P521():
			return string(jose.ES512), nil
		}
		return "", errors.New("oauthclient: unsupported ECDSA curve")
	case *rsa.PrivateKey:
		return string(jose.RS256), nil
	case ed25519.PrivateKey:
		return string(jose.EdDSA), nil
	}
	return "", fmt.Errorf("oauthclient: unsupported private key type %T", key)
}

// ParsePrivateKeyPEM parses a PEM "PRIVATE KEY" (PKCS #8), "EC PRIVATE
// KEY" or "RSA PRIVATE KEY" block into a crypto.Signer usable as
// ClientAuth.PrivateKey.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("oauthclient: no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("oauthclient: unsupported PEM block type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("oauthclient: parsing private key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oauthclient: unsupported private key type %T", key)
	}
	return s, nil
}

// tokenRequest posts form to the token endpoint with client authentication
// (and a DPoP proof when client.DPoP is set) and decodes the response.
// OAuth error responses come back as *meta.Error.
func tokenRequest(ctx context.Context, hc *http.Client, endpoint string, form url.Values, client *ClientAuth, as *meta.AuthorizationServerMetadata) (*meta.TokenResponse, error) {
	var dpop *DPoPSigner
	if client != nil {
		dpop = client.DPoP
	}
	for attempt := 0; ; attempt++ {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		h := http.Header{}
		if client != nil {
			if err := client.apply(f, h, as, time.Now()); err != nil {
				return nil, err
			}
		}
		if dpop != nil {
			proof, err := dpop.Proof(http.MethodPost, endpoint, "")
			if err != nil {
				return nil, err
			}
			h.Set("DPoP", proof)
		}
		var respHeader http.Header
		tr, err := postForm(ctx, hc, endpoint, f, h, func(b []byte) (*meta.TokenResponse, error) { return meta.ParseTokenResponse(b) }, &respHeader)
		if dpop != nil && respHeader != nil {
			fresh := dpop.observe(endpoint, respHeader)
			var oe *meta.Error
			if errors.As(err, &oe) && oe.Code == meta.ErrUseDPoPNonce && fresh && attempt == 0 {
				continue // retry once with the server's nonce (RFC 9449 §8)
			}
		}
		return tr, err
	}
}

func postForm[T any](ctx context.Context, hc *http.Client, endpoint string, form url.Values, h http.Header, parse func([]byte) (*T, error), respHeader *http.Header) (*T, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauthclient: token request: %w", err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return doJSON(hc, req, parse, respHeader)
}

func doJSON[T any](hc *http.Client, req *http.Request, parse func([]byte) (*T, error), respHeader *http.Header) (*T, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: %s %s: %w", req.Method, redactURL(req.URL), err)
	}
	if respHeader != nil {
		*respHeader = resp.Header
	}
	body, rerr := safehttp.ReadBody(resp, maxMetadataBytes)
	if rerr != nil {
		return nil, fmt.Errorf("oauthclient: %s %s: %w", req.Method, redactURL(req.URL), rerr)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if oe, err := meta.ParseError(body, resp.StatusCode); err == nil {
			return nil, oe
		}
		return nil, fmt.Errorf("oauthclient: %s %s: HTTP %d", req.Method, redactURL(req.URL), resp.StatusCode)
	}
	v, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: %s %s: %w", req.Method, redactURL(req.URL), err)
	}
	return v, nil
}

func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
