package principal_test

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/principal"
)

// FuzzSubject checks that parsing any subject never panics and that the
// parts of what Client and Federated build read back.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"", "alice", "client:robot", "oidc:idp.example:U1", "oidc:idp.example:8443:x", "client:", "oidc:"} {
		f.Add(s, "https://idp.example", "U1")
	}
	f.Fuzz(func(t *testing.T, s, issuer, sub string) {
		subj := principal.Subject(s)
		_ = subj.Kind().String()
		_ = subj.IdP([]string{issuer})
		if id := subj.ClientID(); id != "" && principal.Client(id) != subj {
			t.Fatalf("ClientID(%q) = %q does not round-trip", s, id)
		}
		c := principal.Client(s)
		if c.Kind() != principal.KindClient || c.ClientID() != s {
			t.Fatalf("Client(%q) reads back as %v %q", s, c.Kind(), c.ClientID())
		}
		fed := principal.Federated(issuer, sub)
		if fed.Kind() != principal.KindFederated || !fed.FromIdP(issuer) || fed.IdP([]string{issuer}) != issuer {
			t.Fatalf("Federated(%q, %q) = %q does not name its issuer", issuer, sub, fed)
		}
		if !strings.HasSuffix(string(fed), ":"+sub) {
			t.Fatalf("Federated(%q, %q) = %q lost the sub", issuer, sub, fed)
		}
	})
}

// FuzzAttributesNormalize checks that normalising never panics and that
// what it accepts is within the bounds and stable.
func FuzzAttributesNormalize(f *testing.F) {
	f.Add("contractors,eng", "admin", "a@example.com", "A")
	f.Add(",,", "", "\x00", "\xff")
	f.Fuzz(func(t *testing.T, groups, roles, email, name string) {
		a := principal.Attributes{Groups: strings.Split(groups, ","), Roles: strings.Split(roles, ","), Email: email, Name: name}
		n, err := a.Normalize()
		if err != nil {
			return
		}
		if len(n.Groups) > principal.MaxValues || len(n.Roles) > principal.MaxValues {
			t.Fatalf("over the bound: %+v", n)
		}
		again, err := n.Normalize()
		if err != nil || strings.Join(again.Groups, "\x00") != strings.Join(n.Groups, "\x00") {
			t.Fatalf("not stable: %+v then %+v, %v", n, again, err)
		}
	})
}
