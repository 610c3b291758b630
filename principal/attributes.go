package principal

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on the identity attributes carried in an access token. Tokens
// travel in an Authorization header, so what a source provides is capped;
// a source that provides more is refused (fail closed), never truncated,
// since a dropped group could let a forbid policy miss.
const (
	// MaxValues is the most groups, and the most roles, an identity may
	// carry.
	MaxValues = 64
	// MaxValueLen is the longest group, role, email or name in bytes.
	MaxValueLen = 256
)

// ErrTooLarge is returned when an identity's attributes exceed the bounds.
var ErrTooLarge = errors.New("identity attributes exceed the gateway's bounds")

// Attributes are what the source of an identity says about it beyond the
// subject: the claims of an ID-JAG or enterprise ID token, or the
// attributes of a local user. The JSON names are the claim names of the
// gateway's access tokens.
type Attributes struct {
	// Groups and Roles are sorted and free of duplicates once normalised.
	Groups []string `json:"groups,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Email  string   `json:"email,omitempty"`
	Name   string   `json:"name,omitempty"`
	// IdP is the issuer of the identity provider that vouched for the
	// user, "" for local users and clients.
	IdP string `json:"idp,omitempty"`
}

// IsZero reports whether a carries nothing.
func (a *Attributes) IsZero() bool {
	return len(a.Groups) == 0 && len(a.Roles) == 0 && a.Email == "" && a.Name == "" && a.IdP == ""
}

// Normalize checks a against the bounds and returns a copy with groups and
// roles sorted and deduplicated. Values must be valid UTF-8 without control
// characters; empty values in lists are dropped. It wraps [ErrTooLarge]
// when a bound is exceeded.
func (a Attributes) Normalize() (Attributes, error) {
	var err error
	if a.Groups, err = normList("groups", a.Groups); err != nil {
		return Attributes{}, err
	}
	if a.Roles, err = normList("roles", a.Roles); err != nil {
		return Attributes{}, err
	}
	for _, f := range []struct{ name, v string }{{"email", a.Email}, {"name", a.Name}} {
		if err := checkValue(f.name, f.v); err != nil {
			return Attributes{}, err
		}
	}
	if err := checkValue("idp", a.IdP); err != nil && !errors.Is(err, ErrTooLarge) {
		return Attributes{}, err
	}
	return a, nil
}

func normList(what string, in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v == "" {
			continue
		}
		if err := checkValue(what, v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxValues {
		return nil, fmt.Errorf("%w: %d %s (at most %d)", ErrTooLarge, len(out), what, MaxValues)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func checkValue(what, v string) error {
	if len(v) > MaxValueLen {
		return fmt.Errorf("%w: a value of %s is %d bytes long (at most %d)", ErrTooLarge, what, len(v), MaxValueLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("a value of %s is not valid UTF-8", what)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fmt.Errorf("a value of %s contains a control character", what)
	}
	return nil
}
