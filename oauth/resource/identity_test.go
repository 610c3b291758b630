package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/oauth/resource"
)

func TestJWTIdentityClaims(t *testing.T) {
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := resource.NewJWTVerifier(issuer, res, staticKeys{&a.key.PublicKey}, nil)
	ctx := context.Background()

	p, err := v.Verify(ctx, a.token(t, "at+jwt", func(c map[string]any) {
		c["groups"] = []string{"eng", "contractors"}
		c["roles"] = []string{"admin"}
		c["email"] = "a@example.com"
		c["name"] = "Alice"
		c["idp"] = "https://idp.example"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Groups, []string{"contractors", "eng"}) || !slices.Equal(p.Roles, []string{"admin"}) ||
		p.Email != "a@example.com" || p.Name != "Alice" || p.IdP != "https://idp.example" {
		t.Fatalf("principal = %+v", p)
	}
	p, err = v.Verify(ctx, a.token(t, "at+jwt"))
	if err != nil || p.Groups != nil || p.Roles != nil || p.Email != "" || p.IdP != "" {
		t.Fatalf("token without identity claims: %+v, %v", p, err)
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = strings.Repeat("g", i+1)
	}
	for name, mod := range map[string]func(map[string]any){
		"groups as a string":  func(c map[string]any) { c["groups"] = "eng" },
		"groups of numbers":   func(c map[string]any) { c["groups"] = []int{1} },
		"too many groups":     func(c map[string]any) { c["groups"] = many },
		"email not a string":  func(c map[string]any) { c["email"] = []string{"a"} },
		"control in the name": func(c map[string]any) { c["name"] = "a\nb" },
	} {
		if _, err := v.Verify(ctx, a.token(t, "at+jwt", mod)); !errors.Is(err, resource.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
}
