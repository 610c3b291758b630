package gateway

import (
	"context"
	"slices"

	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/principal"
)

// policyIdentity is what the source of the caller's identity says about
// the user, as the verified token carries it: the claims of an ID-JAG or
// enterprise ID token, or a local user's attributes. Policies read it as
// principal.groups, principal.roles, principal.email, principal.name and
// principal.idp.
type policyIdentity struct {
	groups, roles []string
	email, name   string
	// idp is the issuer of the identity provider that vouched for the
	// user, as the token names it ("" when it names none).
	idp string
}

// tokenIdentity is the identity of the caller's verified token, if any.
func tokenIdentity(ctx context.Context) policyIdentity {
	p, ok := resource.PrincipalFromContext(ctx)
	if !ok {
		return policyIdentity{}
	}
	return policyIdentity{groups: slices.Clone(p.Groups), roles: slices.Clone(p.Roles), email: p.Email, name: p.Name, idp: p.IdP}
}

// configuredIssuers are the issuers of the enterprise identity providers
// the configuration trusts (ID-JAG issuers and the OIDC sign-in provider).
func (g *Gateway) configuredIssuers() []string {
	var issuers []string
	if o := g.cfg.OAuth; o != nil {
		for _, ti := range o.TrustedIssuers {
			issuers = append(issuers, ti.Issuer)
		}
		if o.OIDC != nil {
			issuers = append(issuers, o.OIDC.Issuer)
		}
	}
	return issuers
}

// subjectKind is the kind of identity a principal string names.
func subjectKind(p string) principal.Kind { return principal.Subject(p).Kind() }
