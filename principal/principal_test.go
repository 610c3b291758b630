package principal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/principal"
)

func TestSubjectEncoding(t *testing.T) {
	// The wire encoding is fixed: tokens, grants and revocation records
	// written by earlier versions must keep working.
	for _, tt := range []struct {
		got, want principal.Subject
	}{
		{principal.Client("robot"), "client:robot"},
		{principal.Client("https://app.example/cimd.json"), "client:https://app.example/cimd.json"},
		{principal.Federated("https://idp.example", "U1"), "oidc:idp.example:U1"},
		{principal.Federated("https://idp.example/", "U1"), "oidc:idp.example:U1"},
		{principal.Federated("https://idp.example/tenant/", "a:b"), "oidc:idp.example/tenant:a:b"},
		{principal.Federated("https://idp.example:8443", "U1"), "oidc:idp.example:8443:U1"},
		{principal.Federated("not a url", "U1"), "oidc:not a url:U1"},
		{principal.User("alice"), "alice"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSubjectParts(t *testing.T) {
	issuers := []string{"https://idp.example", "https://idp.example:8443", "https://other.example/t1"}
	for _, tt := range []struct {
		s        principal.Subject
		kind     principal.Kind
		clientID string
		idp      string
		user     bool
	}{
		{"", principal.KindNone, "", "", false},
		{"alice", principal.KindUser, "", "", true},
		{"client:robot", principal.KindClient, "robot", "", false},
		{"client:", principal.KindClient, "", "", false},
		{"oidc:idp.example:U1", principal.KindFederated, "", "https://idp.example", true},
		// The issuer with a port is more specific than the one without.
		{"oidc:idp.example:8443:U1", principal.KindFederated, "", "https://idp.example:8443", true},
		{"oidc:other.example/t1:x", principal.KindFederated, "", "https://other.example/t1", true},
		{"oidc:other.example/t2:x", principal.KindFederated, "", "", true},
		{"oidc:unknown.example:x", principal.KindFederated, "", "", true},
		// A local username never contains ':', so this is not a client.
		{"clientx", principal.KindUser, "", "", true},
	} {
		if k := tt.s.Kind(); k != tt.kind {
			t.Errorf("%q.Kind() = %v, want %v", tt.s, k, tt.kind)
		}
		if c := tt.s.ClientID(); c != tt.clientID {
			t.Errorf("%q.ClientID() = %q, want %q", tt.s, c, tt.clientID)
		}
		if i := tt.s.IdP(issuers); i != tt.idp {
			t.Errorf("%q.IdP() = %q, want %q", tt.s, i, tt.idp)
		}
		if u := tt.s.IsUser(); u != tt.user {
			t.Errorf("%q.IsUser() = %v, want %v", tt.s, u, tt.user)
		}
		if tt.idp != "" && !tt.s.FromIdP(tt.idp) {
			t.Errorf("%q.FromIdP(%q) = false", tt.s, tt.idp)
		}
	}
	if principal.Subject("client:x").FromIdP("https://idp.example") {
		t.Error("a client subject is from an IdP")
	}
}

func TestAttributesNormalize(t *testing.T) {
	a, err := principal.Attributes{Groups: []string{"b", "a", "b", ""}, Roles: []string{"r"}, Email: "e@x"}.Normalize()
	if err != nil || strings.Join(a.Groups, ",") != "a,b" || a.Roles[0] != "r" {
		t.Fatalf("Normalize = %+v, %v", a, err)
	}
	many := make([]string, principal.MaxValues+1)
	for i := range many {
		many[i] = strings.Repeat("g", i+1)
	}
	if _, err := (principal.Attributes{Groups: many}).Normalize(); !errors.Is(err, principal.ErrTooLarge) {
		t.Errorf("%d groups: %v, want ErrTooLarge", len(many), err)
	}
	if _, err := (principal.Attributes{Groups: many[:principal.MaxValues]}).Normalize(); err != nil {
		t.Errorf("%d groups: %v", principal.MaxValues, err)
	}
	// Duplicates count once.
	dup := append(many[:principal.MaxValues:principal.MaxValues], many[0], many[1])
	if _, err := (principal.Attributes{Roles: dup}).Normalize(); err != nil {
		t.Errorf("duplicates over the bound: %v", err)
	}
	for _, bad := range []principal.Attributes{
		{Email: strings.Repeat("e", principal.MaxValueLen+1)},
		{Name: "a\x00b"},
		{Roles: []string{"\xff"}},
		{Groups: []string{"x\ny"}},
	} {
		if _, err := bad.Normalize(); err == nil {
			t.Errorf("Normalize(%+v) accepted", bad)
		}
	}
}
