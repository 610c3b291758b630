package policy_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/policy"
)

const identityPolicies = `
permit(principal, action, resource);

@id("no-contractors")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/wipe")
when { principal.groups.contains("contractors") };

@id("deploy-admins")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/deploy")
unless { principal.roles.contains("admin") && principal.email like "*@example.com" && principal.idp == "https://idp.example" };

@id("named")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/named")
when { principal.name == "" };
`

func identityEngine(t *testing.T) *policy.Engine {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "identity.cedar"), identityPolicies)
	return newEngine(t, &policy.Options{Paths: []string{dir}})
}

func TestPrincipalIdentityAttributes(t *testing.T) {
	e := identityEngine(t)
	contractor := alice
	contractor.User = "oidc:idp.example:c1"
	contractor.IdP = "https://idp.example"
	contractor.Groups = []string{"contractors", "eng"}
	admin := bob
	admin.User = "oidc:idp.example:a1"
	admin.IdP = "https://idp.example"
	admin.Groups = []string{"eng"}
	admin.Roles = []string{"admin"}
	admin.Email = "a1@example.com"
	admin.Name = "Ada"
	localAdmin := admin
	localAdmin.User, localAdmin.IdP = "root", ""
	for _, tc := range []struct {
		name     string
		p        policy.Principal
		tool     string
		allow    bool
		deciding string
	}{
		{"contractor denied", contractor, "wipe", false, "no-contractors"},
		{"contractor allowed elsewhere", contractor, "report", true, ""},
		{"user without groups allowed", alice, "wipe", true, ""},
		{"machine client without groups allowed", m2m, "wipe", true, ""},
		{"anonymous allowed", policy.Principal{}, "wipe", true, ""},
		{"admin of the IdP deploys", admin, "deploy", true, ""},
		{"local admin is not from the IdP", localAdmin, "deploy", false, "deploy-admins"},
		{"user without roles denied", alice, "deploy", false, "deploy-admins"},
		{"machine client denied deploy", m2m, "deploy", false, "deploy-admins"},
		{"name known", admin, "named", true, ""},
		{"name unknown", contractor, "named", false, "named"},
		// A client principal's name is the client's name.
		{"client name", m2m, "named", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(&policy.Request{Principal: tc.p, Action: "tools/call", Resource: tool("files", tc.tool)})
			if len(d.Errors) > 0 {
				t.Fatalf("evaluation errors: %v", d.Errors)
			}
			if d.Allow != tc.allow {
				t.Fatalf("allow = %v, want %v (%s)", d.Allow, tc.allow, d.Reason)
			}
			if tc.deciding != "" && !slices.Contains(d.Policies, tc.deciding) {
				t.Fatalf("deciding policies %v, want %s", d.Policies, tc.deciding)
			}
		})
	}
}

// TestEntityCacheSeparatesIdentities checks that users who differ only in
// their identity attributes never share a cached entity, in either order.
func TestEntityCacheSeparatesIdentities(t *testing.T) {
	e := identityEngine(t)
	base := alice
	contractor := alice
	contractor.Groups = []string{"contractors"}
	// Same strings, other boundaries: the hash must tell them apart.
	shifted := alice
	shifted.Groups = []string{"contract", "ors"}
	rolesNotGroups := alice
	rolesNotGroups.Roles = []string{"contractors"}
	decide := func(p policy.Principal) bool {
		return e.Decide(&policy.Request{Principal: p, Action: "tools/call", Resource: tool("files", "wipe")}).Allow
	}
	for range 3 {
		if !decide(base) {
			t.Fatal("alice without groups denied")
		}
		if decide(contractor) {
			t.Fatal("alice in contractors allowed: cached entity shared")
		}
		if !decide(shifted) || !decide(rolesNotGroups) {
			t.Fatal("a look-alike identity was denied: cached entity shared")
		}
		if !decide(base) {
			t.Fatal("alice without groups denied after the contractor")
		}
	}
}

func TestAttributeWarnings(t *testing.T) {
	e := identityEngine(t)
	ws := e.AttributeWarnings(nil)
	for _, want := range []string{"principal.groups is read", "principal.roles is read", "principal.email is read", "principal.idp is read"} {
		if !slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, want) }) {
			t.Errorf("warnings %q lack %q", ws, want)
		}
	}
	if slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "principal.name") }) {
		t.Errorf("principal.name has a source everywhere; warnings %q", ws)
	}
	provided := policy.ProvidedAttributes(policy.IdentitySources{IdPs: [][]string{{"groups", "roles", "email", "name"}}})
	if ws := e.AttributeWarnings(provided); len(ws) != 0 {
		t.Errorf("with an IdP mapping everything: %q", ws)
	}
	provided = policy.ProvidedAttributes(policy.IdentitySources{LocalUsers: []string{"groups"}})
	ws = e.AttributeWarnings(provided)
	if slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "principal.groups") }) || len(ws) != 3 {
		t.Errorf("with local users' groups: %q", ws)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "typo.cedar"), `permit(principal, action, resource) when { principal.group.contains("x") };`)
	ws = newEngine(t, &policy.Options{Paths: []string{dir}}).AttributeWarnings(provided)
	if len(ws) != 1 || !strings.Contains(ws[0], "typo.cedar:1:1: principal.group is not an attribute") {
		t.Errorf("typo: %q", ws)
	}
}
