package meta

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxChallengeHeaderLen bounds the total length of the WWW-Authenticate
// header values ParseChallenges accepts.
const MaxChallengeHeaderLen = 16 << 10

// Param is one auth-param of a challenge. Name is lower-case.
type Param struct {
	Name  string
	Value string
}

// Challenge is one authentication challenge from a WWW-Authenticate header
// (RFC 9110 §11.6.1): a scheme followed by either a token68 or a list of
// parameters.
type Challenge struct {
	// Scheme is the auth-scheme as sent (compare with strings.EqualFold).
	Scheme string
	// Token68 is set when the challenge carries a token68 instead of params.
	Token68 string
	// Params are the auth-params in order, names lower-cased.
	Params []Param
}

// Get returns the value of the named parameter (case-insensitive) and
// whether it was present.
func (c *Challenge) Get(name string) (string, bool) {
	for _, p := range c.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

// ParseChallenges parses WWW-Authenticate header values (as returned by
// http.Header.Values, one or more, each possibly holding several
// comma-separated challenges) into challenges. Quoted strings may contain
// commas, equals signs and backslash escapes. Duplicate parameters within a
// challenge, unterminated quoted strings and other syntax errors give an
// error.
func ParseChallenges(values []string) ([]Challenge, error) {
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > MaxChallengeHeaderLen {
		return nil, fmt.Errorf("WWW-Authenticate: header too long (%d bytes)", total)
	}
	var out []Challenge
	for _, v := range values {
		cs, err := parseChallengeList(v)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}

type challengeLexer struct {
	s string
	i int
}

func (l *challengeLexer) skipWS() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

// skipSeparators skips whitespace and commas (empty list elements are
// allowed by the #rule).
func (l *challengeLexer) skipSeparators() {
	for l.i < len(l.s) && (l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == ',') {
		l.i++
	}
}

func (l *challengeLexer) token() string {
	start := l.i
	for l.i < len(l.s) && isTchar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func (l *challengeLexer) atEnd() bool { return l.i >= len(l.s) }

func (l *challengeLexer) quoted() (string, error) {
	// l.s[l.i] == '"'
	start := l.i
	l.i++
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"':
			l.i++
			return b.String(), nil
		case c == '\\':
			if l.i+1 >= len(l.s) {
				return "", fmt.Errorf("WWW-Authenticate: unterminated escape in quoted string at offset %d", l.i)
			}
			e := l.s[l.i+1]
			if e < 0x20 && e != '\t' || e == 0x7f {
				return "", fmt.Errorf("WWW-Authenticate: control character in quoted string at offset %d", l.i+1)
			}
			b.WriteByte(e)
			l.i += 2
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", fmt.Errorf("WWW-Authenticate: control character in quoted string at offset %d", l.i)
		default:
			b.WriteByte(c)
			l.i++
		}
	}
	return "", fmt.Errorf("WWW-Authenticate: unterminated quoted string starting at offset %d", start)
}

func parseChallengeList(s string) ([]Challenge, error) {
	l := &challengeLexer{s: s}
	var out []Challenge
	for {
		l.skipSeparators()
		if l.atEnd() {
			return out, nil
		}
		scheme := l.token()
		if scheme == "" {
			return nil, fmt.Errorf("WWW-Authenticate: expected auth-scheme at offset %d, found %q", l.i, l.s[l.i])
		}
		c := Challenge{Scheme: scheme}
		if !l.atEnd() && l.s[l.i] != ' ' && l.s[l.i] != '\t' && l.s[l.i] != ',' {
			return nil, fmt.Errorf("WWW-Authenticate: invalid character %q after auth-scheme %q", l.s[l.i], scheme)
		}
		l.skipWS()
		if l.atEnd() || l.s[l.i] == ',' {
			out = append(out, c)
			continue
		}
		// token68?
		if t68, ok := l.tryToken68(); ok {
			c.Token68 = t68
			out = append(out, c)
			continue
		}
		if err := l.params(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// tryToken68 consumes a token68 if one starts at the current position and
// is followed (after optional whitespace) by a comma or the end.
func (l *challengeLexer) tryToken68() (string, bool) {
	j := l.i
	for j < len(l.s) && isToken68Char(l.s[j]) {
		j++
	}
	if j == l.i {
		return "", false
	}
	for j < len(l.s) && l.s[j] == '=' {
		j++
	}
	end := j
	for j < len(l.s) && (l.s[j] == ' ' || l.s[j] == '\t') {
		j++
	}
	if j < len(l.s) && l.s[j] != ',' {
		return "", false
	}
	t := l.s[l.i:end]
	l.i = j
	return t, true
}

// params parses the auth-param list of c. It stops at the end of input or
// before a list element that is not an auth-param (the next challenge).
func (l *challengeLexer) params(c *Challenge) error {
	for {
		start := l.i
		name := l.token()
		if name == "" {
			if l.atEnd() {
				return nil
			}
			return fmt.Errorf("WWW-Authenticate: expected auth-param at offset %d, found %q", l.i, l.s[l.i])
		}
		l.skipWS()
		if l.atEnd() || l.s[l.i] != '=' {
			if len(c.Params) == 0 {
				return fmt.Errorf("WWW-Authenticate: expected '=' after parameter %q", name)
			}
			// Start of the next challenge.
			l.i = start
			return nil
		}
		l.i++ // '='
		l.skipWS()
		var value string
		if !l.atEnd() && l.s[l.i] == '"' {
			v, err := l.quoted()
			if err != nil {
				return err
			}
			value = v
		} else {
			value = l.token()
			if value == "" {
				return fmt.Errorf("WWW-Authenticate: missing value for parameter %q", name)
			}
		}
		lname := strings.ToLower(name)
		for _, p := range c.Params {
			if p.Name == lname {
				return fmt.Errorf("WWW-Authenticate: duplicate parameter %q in %s challenge", lname, c.Scheme)
			}
		}
		c.Params = append(c.Params, Param{Name: lname, Value: value})
		l.skipWS()
		if l.atEnd() {
			return nil
		}
		if l.s[l.i] != ',' {
			return fmt.Errorf("WWW-Authenticate: expected ',' at offset %d, found %q", l.i, l.s[l.i])
		}
		l.skipSeparators()
		if l.atEnd() {
			return nil
		}
	}
}

// FormatChallenge renders c as a WWW-Authenticate header value. Parameter
// values are always sent as quoted strings with '"' and '\' escaped. It
// fails on an invalid scheme or parameter name, or on control characters
// in a value (which could split the header).
func FormatChallenge(c Challenge) (string, error) {
	if !isToken(c.Scheme) {
		return "", fmt.Errorf("WWW-Authenticate: invalid auth-scheme %q", c.Scheme)
	}
	var b strings.Builder
	b.WriteString(c.Scheme)
	if c.Token68 != "" {
		if len(c.Params) > 0 {
			return "", errors.New("WWW-Authenticate: challenge has both token68 and parameters")
		}
		t := strings.TrimRight(c.Token68, "=")
		for i := 0; i < len(t); i++ {
			if !isToken68Char(t[i]) {
				return "", fmt.Errorf("WWW-Authenticate: invalid token68 %q", c.Token68)
			}
		}
		b.WriteByte(' ')
		b.WriteString(c.Token68)
		return b.String(), nil
	}
	for i, p := range c.Params {
		if !isToken(p.Name) {
			return "", fmt.Errorf("WWW-Authenticate: invalid parameter name %q", p.Name)
		}
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		b.WriteString(`="`)
		for j := 0; j < len(p.Value); j++ {
			ch := p.Value[j]
			if ch < 0x20 && ch != '\t' || ch == 0x7f {
				return "", fmt.Errorf("WWW-Authenticate: control character in parameter %q", p.Name)
			}
			if ch == '"' || ch == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(ch)
		}
		b.WriteByte('"')
	}
	return b.String(), nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// BearerChallenge is the Bearer challenge of RFC 6750 §3 with the
// resource_metadata parameter of RFC 9728 §5.1.
type BearerChallenge struct {
	Realm string
	// ResourceMetadata is the URL of the protected resource metadata.
	ResourceMetadata string
	// Scope is the space-separated scope needed for the request.
	Scope            string
	Error            string
	ErrorDescription string
	ErrorURI         string
}

// ParseBearerChallenge finds the first Bearer challenge in the
// WWW-Authenticate values of h. It returns (nil, nil) if there is no
// WWW-Authenticate header or no Bearer challenge in it, and an error if the
// header cannot be parsed.
func ParseBearerChallenge(h http.Header) (*BearerChallenge, error) {
	return ParseSchemeChallenge(h, "Bearer")
}

// ParseSchemeChallenge is ParseBearerChallenge for another scheme with the
// same parameters, such as "DPoP" (RFC 9449 §7.1).
func ParseSchemeChallenge(h http.Header, scheme string) (*BearerChallenge, error) {
	values := h.Values("WWW-Authenticate")
	if len(values) == 0 {
		return nil, nil
	}
	cs, err := ParseChallenges(values)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if !strings.EqualFold(c.Scheme, scheme) {
			continue
		}
		b := &BearerChallenge{}
		b.Realm, _ = c.Get("realm")
		b.ResourceMetadata, _ = c.Get("resource_metadata")
		b.Scope, _ = c.Get("scope")
		b.Error, _ = c.Get("error")
		b.ErrorDescription, _ = c.Get("error_description")
		b.ErrorURI, _ = c.Get("error_uri")
		return b, nil
	}
	return nil, nil
}

// Challenge converts b to a generic challenge, omitting empty members, in
// the order realm, resource_metadata, scope, error, error_description,
// error_uri.
func (b *BearerChallenge) Challenge() Challenge {
	c := Challenge{Scheme: "Bearer"}
	for _, p := range []Param{
		{"realm", b.Realm},
		{"resource_metadata", b.ResourceMetadata},
		{"scope", b.Scope},
		{"error", b.Error},
		{"error_description", b.ErrorDescription},
		{"error_uri", b.ErrorURI},
	} {
		if p.Value != "" {
			c.Params = append(c.Params, p)
		}
	}
	return c
}

// Format renders b as a WWW-Authenticate header value.
func (b *BearerChallenge) Format() (string, error) {
	return FormatChallenge(b.Challenge())
}
