package inventory

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxDocumentSize bounds the metadata documents and tool definitions the
// inventory accepts.
const MaxDocumentSize = 1 << 20

// ClientMetadata is what the inventory extracts from a client metadata
// document or registration request to detect security-relevant change.
type ClientMetadata struct {
	// RedirectURIs are the redirect_uris, sorted, without duplicates.
	RedirectURIs []string
	// KeyThumbprints are the RFC 7638 SHA-256 thumbprints (base64url,
	// unpadded) of the keys in jwks, sorted. A key go-jose cannot parse
	// is represented by "jcs-sha256:" and the hex SHA-256 of its RFC 8785
	// canonical JSON, so that changing it is still detected.
	KeyThumbprints []string
	// JWKSURI is the jwks_uri.
	JWKSURI string
}

// ParseClientMetadata extracts redirect URIs and key fingerprints from a
// client metadata document (RFC 7591 member names). Other members are
// ignored; the document must be a JSON object with valid UTF-8 and no
// duplicate member names.
func ParseClientMetadata(doc []byte) (*ClientMetadata, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("metadata document is %d bytes, more than %d", len(doc), MaxDocumentSize)
	}
	var raw struct {
		RedirectURIs []string       `json:"redirect_uris"`
		JWKS         jsontext.Value `json:"jwks"`
		JWKSURI      string         `json:"jwks_uri"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("metadata document: %w", err)
	}
	md := &ClientMetadata{JWKSURI: raw.JWKSURI}
	for _, u := range raw.RedirectURIs {
		if u == "" {
			return nil, errors.New("metadata document: empty redirect URI")
		}
		if !slices.Contains(md.RedirectURIs, u) {
			md.RedirectURIs = append(md.RedirectURIs, u)
		}
	}
	slices.Sort(md.RedirectURIs)
	if len(raw.JWKS) > 0 && raw.JWKS.Kind() != 'n' {
		var set struct {
			Keys []jsontext.Value `json:"keys"`
		}
		if err := json.Unmarshal(raw.JWKS, &set); err != nil {
			return nil, fmt.Errorf("metadata document: jwks: %w", err)
		}
		for i, k := range set.Keys {
			tp, err := KeyThumbprint(k)
			if err != nil {
				return nil, fmt.Errorf("metadata document: jwks key %d: %w", i, err)
			}
			if !slices.Contains(md.KeyThumbprints, tp) {
				md.KeyThumbprints = append(md.KeyThumbprints, tp)
			}
		}
		slices.Sort(md.KeyThumbprints)
	}
	return md, nil
}

// KeyThumbprint returns the RFC 7638 SHA-256 thumbprint (base64url,
// unpadded) of a JWK, or, for a key that go-jose cannot parse (an unknown
// kty, for example), "jcs-sha256:" and the hex SHA-256 of its RFC 8785
// canonical JSON. It fails only on a value that is not a JSON object.
func KeyThumbprint(k jsontext.Value) (string, error) {
	if k.Kind() != '{' {
		return "", errors.New("a JWK must be a JSON object")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(k); err == nil {
		if tp, err := jwk.Thumbprint(crypto.SHA256); err == nil {
			return base64.RawURLEncoding.EncodeToString(tp), nil
		}
	}
	c := k.Clone()
	if err := c.Canonicalize(); err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return "jcs-sha256:" + hex.EncodeToString(sum[:]), nil
}

// RedirectHosts returns the distinct hosts of redirect URIs, sorted
// (unparseable URIs are listed as given).
func RedirectHosts(uris []string) []string {
	var out []string
	for _, s := range uris {
		h := s
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			h = u.Host
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}
