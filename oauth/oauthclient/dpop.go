package oauthclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// DPoPSigner creates DPoP proofs (RFC 9449) with one key pair and
// remembers the nonces servers hand out, per origin. It is safe for
// concurrent use.
type DPoPSigner struct {
	key    crypto.Signer
	alg    string
	signer jose.Signer

	mu     sync.Mutex
	nonces map[string]string // origin -> latest DPoP-Nonce
}

// NewDPoPSigner returns a signer for key; a nil key generates a fresh
// P-256 key (ES256). alg may be empty to use DefaultSigningAlgorithm(key).
func NewDPoPSigner(key crypto.Signer, alg string) (*DPoPSigner, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("oauthclient: DPoP key: %w", err)
		}
		key = k
	}
	if alg == "" {
		var err error
		if alg, err = DefaultSigningAlgorithm(key); err != nil {
			return nil, err
		}
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(meta.DPoPJWTType)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: DPoP signer: %w", err)
	}
	return &DPoPSigner{key: key, alg: alg, signer: s, nonces: map[string]string{}}, nil
}

// Algorithm returns the JWS algorithm of the proofs.
func (d *DPoPSigner) Algorithm() string { return d.alg }

// supportedBy reports whether the server metadata lists the signer's
// algorithm in dpop_signing_alg_values_supported.
func (d *DPoPSigner) supportedBy(as *meta.AuthorizationServerMetadata) bool {
	return d != nil && as != nil && slices.Contains(as.DPoPSigningAlgValuesSupported, d.alg)
}

// Proof returns a fresh proof for a request with method to target; with a
// non-empty accessToken it carries the ath claim. The latest nonce seen
// from target's origin is included.
func (d *DPoPSigner) Proof(method, target, accessToken string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("oauthclient: DPoP htu: %w", err)
	}
	htu := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	claims := map[string]any{
		"jti": meta.RandomToken(16),
		"htm": method,
		"htu": htu,
		"iat": jwt.NewNumericDate(time.Now()),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if n := d.nonce(target); n != "" {
		claims["nonce"] = n
	}
	s, err := jwt.Signed(d.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("oauthclient: DPoP proof: %w", err)
	}
	return s, nil
}

func (d *DPoPSigner) nonce(target string) string {
	o, err := meta.Origin(target)
	if err != nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonces[o]
}

// observe records a DPoP-Nonce response header from target's origin and
// reports whether it was new.
func (d *DPoPSigner) observe(target string, h http.Header) bool {
	n := h.Get("DPoP-Nonce")
	if d == nil || n == "" {
		return false
	}
	o, err := meta.Origin(target)
	if err != nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces[o] == n {
		return false
	}
	d.nonces[o] = n
	return true
}
