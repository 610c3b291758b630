package authserver_test

import (
	"testing"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/principal"
)

// FuzzAttributesFromClaims feeds arbitrary claim sets (the payload of a
// verified ID-JAG or ID token) to the identity attribute parser: it never
// panics, and what it accepts is within the bounds.
func FuzzAttributesFromClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u","groups":["a","b"],"roles":"r","email":"e@x","name":"N"}`,
		`{"groups":null,"roles":[],"email":null}`,
		`{"groups":[1,2]}`, `{"groups":{"a":1}}`, `{"groups":"a","groups":"b"}`,
		`{"memberOf":["x"]}`, `[]`, `{"email":"\u0000"}`, `{"groups":["\ud800"]}`,
	} {
		f.Add([]byte(s), "memberOf")
	}
	f.Fuzz(func(t *testing.T, payload []byte, groupsClaim string) {
		for _, m := range []authserver.ClaimMapping{{}, {Groups: groupsClaim, Roles: "-"}} {
			a, err := authserver.AttributesFromClaims(payload, "https://idp.example", m)
			if err != nil {
				continue
			}
			if a.IdP != "https://idp.example" || len(a.Groups) > principal.MaxValues || len(a.Roles) > principal.MaxValues ||
				len(a.Email) > principal.MaxValueLen || len(a.Name) > principal.MaxValueLen {
				t.Fatalf("accepted out of bounds: %+v", a)
			}
		}
	})
}
