package authserver_test

import (
	"crypto/ecdsa"
	"encoding/base64"
)

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// jwkOf returns the public JWK of an EC P-256 key.
func jwkOf(k *ecdsa.PrivateKey, kid string) map[string]any {
	b, _ := k.PublicKey.Bytes() // 0x04 || X || Y
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:65])}
}
