package authserver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

// ClaimMapping names the claims of an identity provider's tokens (ID-JAG
// or ID token) that become the user's identity attributes. An empty field
// means the default claim name: "groups", "roles", "email" and "name".
// "-" turns an attribute off for that provider.
type ClaimMapping struct {
	Groups, Roles, Email, Name string
}

func (m ClaimMapping) name(field, def string) string {
	if field == "" {
		return def
	}
	return field
}

// Provides reports which identity attributes ("groups", "roles", "email",
// "name") the mapping reads from a provider's tokens.
func (m ClaimMapping) Provides() []string {
	var out []string
	for _, f := range []struct{ attr, v string }{{"groups", m.Groups}, {"roles", m.Roles}, {"email", m.Email}, {"name", m.Name}} {
		if f.v != "-" {
			out = append(out, f.attr)
		}
	}
	return out
}

// maxClaimsBytes caps the JSON claims of an identity provider's token that
// are read for identity attributes.
const maxClaimsBytes = 64 << 10

// AttributesFromClaims reads the identity attributes of a user from the
// JSON claims of a verified ID-JAG or ID token, as mapped by m, and
// records issuer as the vouching identity provider. A list claim may be a
// JSON array of strings or a single string; any other type is an error,
// as is a claim set over the bounds of [principal.Attributes.Normalize]
// (nothing is truncated, so that no group silently goes missing).
func AttributesFromClaims(payload []byte, issuer string, m ClaimMapping) (principal.Attributes, error) {
	if len(payload) > maxClaimsBytes {
		return principal.Attributes{}, fmt.Errorf("%w: claims are %d bytes (at most %d)", principal.ErrTooLarge, len(payload), maxClaimsBytes)
	}
	var raw map[string]jsontext.Value
	if err := json.Unmarshal(payload, &raw); err != nil {
		return principal.Attributes{}, fmt.Errorf("claims: %w", err)
	}
	a := principal.Attributes{IdP: issuer}
	var err error
	if a.Groups, err = listClaim(raw, m.name(m.Groups, "groups")); err != nil {
		return principal.Attributes{}, err
	}
	if a.Roles, err = listClaim(raw, m.name(m.Roles, "roles")); err != nil {
		return principal.Attributes{}, err
	}
	if a.Email, err = stringClaim(raw, m.name(m.Email, "email")); err != nil {
		return principal.Attributes{}, err
	}
	if a.Name, err = stringClaim(raw, m.name(m.Name, "name")); err != nil {
		return principal.Attributes{}, err
	}
	return a.Normalize()
}

func listClaim(raw map[string]jsontext.Value, name string) ([]string, error) {
	v, ok := raw[name]
	if name == "-" || !ok || v.Kind() == 'n' {
		return nil, nil
	}
	var one string
	if v.Kind() == '"' {
		if err := json.Unmarshal(v, &one); err != nil {
			return nil, fmt.Errorf("claim %q: %w", name, err)
		}
		return []string{one}, nil
	}
	if v.Kind() != '[' {
		return nil, fmt.Errorf("claim %q must be an array of strings or a string", name)
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("claim %q must be an array of strings: %w", name, err)
	}
	return l, nil
}

func stringClaim(raw map[string]jsontext.Value, name string) (string, error) {
	v, ok := raw[name]
	if name == "-" || !ok || v.Kind() == 'n' {
		return "", nil
	}
	var s string
	if v.Kind() != '"' || json.Unmarshal(v, &s) != nil {
		return "", fmt.Errorf("claim %q must be a string", name)
	}
	return s, nil
}

// encodeAttributes is the stored form of a grant's identity attributes
// (sessions, authorization codes, refresh tokens): "" when there are none.
func encodeAttributes(a principal.Attributes) string {
	if a.IsZero() {
		return ""
	}
	b, err := json.Marshal(a)
	if err != nil {
		return ""
	}
	return string(b)
}

// decodeAttributes reads what encodeAttributes stored.
func decodeAttributes(s string) (principal.Attributes, error) {
	var a principal.Attributes
	if s == "" {
		return a, nil
	}
	if err := json.Unmarshal([]byte(s), &a, json.RejectUnknownMembers(false)); err != nil {
		return a, fmt.Errorf("stored identity attributes: %w", err)
	}
	return a.Normalize()
}

// grantAttributes returns the identity attributes the access token of g
// carries: those the identity provider asserted (ID-JAG, enterprise
// sign-in), or, for a local user, the user's stored attributes as they
// are now. Clients acting for themselves carry none. Attributes over the
// bounds refuse the grant (invalid_grant).
func (s *Server) grantAttributes(ctx context.Context, g *grant) (principal.Attributes, error) {
	a := g.attrs
	switch principal.Subject(g.subject).Kind() {
	case principal.KindClient, principal.KindNone:
		return principal.Attributes{}, nil
	case principal.KindUser:
		if a.IdP != "" {
			// An enterprise user named by a verified email.
			break
		}
		u, err := s.st.GetUser(ctx, g.subject)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return principal.Attributes{}, fmt.Errorf("reading the user's attributes: %w", err)
		}
		a = principal.Attributes{Groups: u.Groups, Roles: u.Roles, Email: u.Email}
	}
	a, err := a.Normalize()
	if err != nil {
		return principal.Attributes{}, attributesRefused(err)
	}
	return a, nil
}

// attributesRefused is the token error of a grant whose identity
// attributes cannot be carried.
func attributesRefused(err error) *meta.Error {
	msg := err.Error()
	if errors.Is(err, principal.ErrTooLarge) {
		msg = strings.Replace(msg, principal.ErrTooLarge.Error(), "the identity has more attributes than the gateway carries", 1)
	}
	return errInvalidGrant("%s", msg)
}
