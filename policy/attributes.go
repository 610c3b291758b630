package policy

import (
	"fmt"
	"slices"
	"strings"

	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Identity attributes of principal entities that only a configured source
// of identity can fill: an enterprise identity provider (claims of an
// ID-JAG or an ID token) or the local user store. Every principal entity
// has them (empty when unknown); see docs/policy.md.
const (
	AttrGroups = "groups"
	AttrRoles  = "roles"
	AttrEmail  = "email"
	AttrIdP    = "idp"
)

// sourcedAttributes are the principal attributes that need a source.
var sourcedAttributes = []string{AttrGroups, AttrRoles, AttrEmail, AttrIdP}

// principalAttributes are every attribute some principal entity has.
var principalAttributes = []string{
	// every principal
	"id", "name", AttrGroups, AttrRoles, AttrEmail, AttrIdP,
	// Client
	"registration", "client_uri", "software_id", "software_version",
	"token_endpoint_auth_method", "redirect_hosts", "grant_types",
}

// attributeUse is a principal attribute a policy reads, and where.
type attributeUse struct {
	attr string
	pos  string // file:line:col of the policy
}

// principalReads returns the attributes of principal that the conditions
// of p read (principal.X or principal has X), sorted.
func principalReads(p *xast.Policy) []string {
	var out []string
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(node xast.IsNode) bool {
			if arg, name, ok := strOp(node); ok {
				if v, ok := arg.(xast.NodeTypeVariable); ok && v.Name == "principal" && !slices.Contains(out, string(name)) {
					out = append(out, string(name))
				}
			}
			return true
		})
	}
	slices.Sort(out)
	return out
}

// AttributeWarnings returns a warning for each policy of the current set
// that reads a principal attribute no configured source provides, and for
// each attribute no principal entity has. provided lists the identity
// attributes ("groups", "roles", "email", "idp") that some configured
// source fills: see [ProvidedAttributes]. The policy still loads; such a
// condition sees an empty set or string for every principal.
func (e *Engine) AttributeWarnings(provided []string) []string {
	set := e.set.Load()
	var out []string
	for _, p := range set.policies {
		for _, a := range p.principalAttrs {
			switch {
			case !slices.Contains(principalAttributes, a):
				out = append(out, fmt.Sprintf("%s: principal.%s is not an attribute of any principal (User, Client, Anonymous have: %s); the policy fails to evaluate", p.pos, a, strings.Join(principalAttributes, ", ")))
			case slices.Contains(sourcedAttributes, a) && !slices.Contains(provided, a):
				out = append(out, fmt.Sprintf("%s: principal.%s is read, but no configured source of identity provides it (%s), so it is empty for every principal", p.pos, a, attributeSources[a]))
			}
		}
	}
	return out
}

// attributeSources says, for a warning, what provides each attribute.
var attributeSources = map[string]string{
	AttrGroups: "configure an enterprise identity provider (oauth.trusted_issuers or oauth.oidc) whose claims map groups, or give local users groups with `mcpgate user add --group`",
	AttrRoles:  "configure an enterprise identity provider (oauth.trusted_issuers or oauth.oidc) whose claims map roles, or give local users roles with `mcpgate user add --role`",
	AttrEmail:  "configure an enterprise identity provider (oauth.trusted_issuers or oauth.oidc) whose claims map email, or give local users an email with `mcpgate user add --email`",
	AttrIdP:    "configure an enterprise identity provider (oauth.trusted_issuers or oauth.oidc)",
}

// IdentitySources describes the configured sources of identity, for
// [ProvidedAttributes].
type IdentitySources struct {
	// IdPs lists, for each configured enterprise identity provider, the
	// attributes its claim mapping fills ("groups", "roles", "email",
	// "name").
	IdPs [][]string
	// LocalUsers are the attributes at least one local user has.
	LocalUsers []string
}

// ProvidedAttributes returns the identity attributes some source provides.
// The rule: an attribute is provided when an enterprise identity provider
// is configured whose claim mapping reads it (idp: when any enterprise
// identity provider is configured), or when at least one local user has
// it.
func ProvidedAttributes(src IdentitySources) []string {
	var out []string
	add := func(a string) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, idp := range src.IdPs {
		add(AttrIdP)
		for _, a := range idp {
			add(a)
		}
	}
	for _, a := range src.LocalUsers {
		add(a)
	}
	slices.Sort(out)
	return out
}
