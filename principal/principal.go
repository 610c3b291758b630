// Package principal names the identity behind a request: a local user, a
// client acting for itself, or a user vouched for by an external identity
// provider. It owns the encoding of that identity as a token subject, so
// that no other package spells the "client:" and "oidc:" prefixes by hand.
//
// The encoding is a wire format: it appears in access and refresh tokens,
// stored grants, sessions, tasks and revocation records, and must not
// change.
//
//	local user        <username>                   (never contains ':')
//	client            client:<client_id>
//	federated user    oidc:<issuer host[/path]>:<sub>
package principal

import (
	"net/url"
	"strings"
)

// Kind is what sort of identity a [Subject] names.
type Kind int

// Kinds of subject.
const (
	// KindNone is the empty subject (no identity).
	KindNone Kind = iota
	// KindUser is a local user of the authorization server.
	KindUser
	// KindClient is an OAuth client acting for itself (client
	// credentials).
	KindClient
	// KindFederated is a user authenticated by an external identity
	// provider (enterprise sign-in or an ID-JAG).
	KindFederated
)

// String returns "none", "user", "client" or "federated".
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindClient:
		return "client"
	case KindFederated:
		return "federated"
	}
	return "none"
}

const (
	clientPrefix    = "client:"
	federatedPrefix = "oidc:"
)

// Subject is the identity behind a request, in its wire encoding (the sub
// of the gateway's access tokens).
type Subject string

// User returns the subject of a local user.
func User(username string) Subject { return Subject(username) }

// Client returns the subject of a client acting for itself: "client:" and
// the client_id. It cannot collide with a local username, which never
// contains ':'.
func Client(clientID string) Subject { return Subject(clientPrefix + clientID) }

// Federated returns the subject of a user authenticated by the identity
// provider issuer with the provider's subject sub: "oidc:", the issuer's
// host (and path), ":" and sub. The same person gets the same subject by
// either route (ID-JAG or enterprise sign-in).
func Federated(issuer, sub string) Subject {
	return Subject(issuerPrefix(issuer) + sub)
}

// issuerPrefix is the prefix every federated subject of issuer starts with.
func issuerPrefix(issuer string) string {
	host := issuer
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		host = u.Host + strings.TrimSuffix(u.EscapedPath(), "/")
	}
	return federatedPrefix + host + ":"
}

// String returns the wire encoding.
func (s Subject) String() string { return string(s) }

// Kind reports what sort of identity s names.
func (s Subject) Kind() Kind {
	switch {
	case s == "":
		return KindNone
	case strings.HasPrefix(string(s), clientPrefix):
		return KindClient
	case strings.HasPrefix(string(s), federatedPrefix):
		return KindFederated
	}
	return KindUser
}

// ClientID returns the client_id of a client subject, or "".
func (s Subject) ClientID() string {
	id, _ := strings.CutPrefix(string(s), clientPrefix)
	if len(id) == len(s) {
		return ""
	}
	return id
}

// IsUser reports whether s names a person (local or federated), as opposed
// to a client acting for itself or nobody.
func (s Subject) IsUser() bool {
	k := s.Kind()
	return k == KindUser || k == KindFederated
}

// IdP returns the issuer among issuers that vouched for a federated
// subject, or "". When several issuers match (one issuer's host is a
// prefix of another's, say "idp.example" and "idp.example:8443"), the
// longest, most specific one wins.
func (s Subject) IdP(issuers []string) string {
	if s.Kind() != KindFederated {
		return ""
	}
	best, bestLen := "", 0
	for _, iss := range issuers {
		if p := issuerPrefix(iss); strings.HasPrefix(string(s), p) && len(p) > bestLen {
			best, bestLen = iss, len(p)
		}
	}
	return best
}

// FromIdP reports whether s is a federated subject of issuer.
func (s Subject) FromIdP(issuer string) bool {
	return s.Kind() == KindFederated && strings.HasPrefix(string(s), issuerPrefix(issuer))
}
