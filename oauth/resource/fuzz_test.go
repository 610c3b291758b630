package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/principal"
)

// FuzzJWTClaims signs arbitrary claim sets and verifies them: the claims
// parser never panics, and an accepted token's identity is within the
// bounds.
func FuzzJWTClaims(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		f.Fatal(err)
	}
	v := resource.NewJWTVerifier(issuer, res, staticKeys{&key.PublicKey}, nil)
	exp := time.Now().Add(time.Hour).Unix()
	for _, s := range []string{`"groups":["a","b"],"roles":["r"],"email":"e","name":"n","idp":"i"`, `"groups":"a"`, `"groups":[1]`, `"groups":null`, `"email":{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, extra string) {
		payload := fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":%q,"exp":%d,%s}`, issuer, res, exp, extra)
		jws, err := signer.Sign([]byte(payload))
		if err != nil {
			return
		}
		tok, _ := jws.CompactSerialize()
		p, err := v.Verify(context.Background(), tok)
		if err != nil {
			return
		}
		if len(p.Groups) > principal.MaxValues || len(p.Roles) > principal.MaxValues || len(p.Email) > principal.MaxValueLen || len(p.Name) > principal.MaxValueLen {
			t.Fatalf("accepted out of bounds: %+v", p)
		}
	})
}
