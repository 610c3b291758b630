package meta

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// GenerateCodeVerifier returns a new PKCE code verifier: 32 random bytes,
// base64url-encoded without padding (43 characters, RFC 7636 §4.1).
func GenerateCodeVerifier() string {
	return RandomToken(32)
}

// S256Challenge returns the S256 code challenge for verifier
// (BASE64URL(SHA256(ASCII(verifier))), RFC 7636 §4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyS256 reports, in constant time, whether verifier matches the S256
// challenge.
func VerifyS256(verifier, challenge string) bool {
	got := S256Challenge(verifier)
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// ValidateCodeVerifier checks the RFC 7636 §4.1 syntax: 43 to 128
// characters from [A-Za-z0-9-._~].
func ValidateCodeVerifier(v string) error {
	if len(v) < 43 || len(v) > 128 {
		return fmt.Errorf("code_verifier: length %d outside 43..128", len(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return fmt.Errorf("code_verifier: invalid character at offset %d", i)
		}
	}
	return nil
}

// RandomToken returns n random bytes from crypto/rand, base64url-encoded
// without padding; suitable for state values, verifiers and JWT IDs.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
