package approval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// This file implements the JSON Canonicalization Scheme (RFC 8785): no
// whitespace, object members sorted by the UTF-16 code units of their
// names, strings in their shortest escaped form, numbers as ECMAScript's
// Number.prototype.toString prints the IEEE 754 double they denote.
//
// Input is parsed with jsontext, which rejects duplicate member names
// (also when they differ only in escaping), invalid UTF-8, lone surrogate
// escapes and excessive nesting.

// errInexactNumber reports a JSON number whose value is changed by
// conversion to an IEEE 754 double (too many significant digits, too
// large, or too small), so that two different arguments would share one
// canonical form.
var errInexactNumber = errors.New("number cannot be represented exactly as an IEEE 754 double")

// canonicalizer holds the state of one canonicalization.
type canonicalizer struct {
	dec *jsontext.Decoder
	// exact refuses numbers whose value a double cannot hold exactly
	// (see errInexactNumber) instead of rounding them as RFC 8785 does.
	exact bool
}

// canonicalJSON returns the RFC 8785 canonical form of the JSON value in
// b. With exact set it refuses numbers whose decimal value differs from
// that of their canonical form.
func canonicalJSON(b []byte, exact bool) ([]byte, error) {
	c := &canonicalizer{dec: jsontext.NewDecoder(bytes.NewReader(b)), exact: exact}
	out, err := c.value(nil)
	if err != nil {
		return nil, err
	}
	if _, err := c.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("unexpected data after the JSON value at offset %d", c.dec.InputOffset())
		}
		return nil, err
	}
	return out, nil
}

// member is one object member: its name's UTF-16 code units (the sort
// key), and the canonical forms of name and value.
type member struct {
	units []uint16
	name  string
	value []byte
}

// value appends the canonical form of the next JSON value to dst.
func (c *canonicalizer) value(dst []byte) ([]byte, error) {
	switch c.dec.PeekKind() {
	case '{':
		if _, err := c.dec.ReadToken(); err != nil {
			return nil, err
		}
		var members []member
		for c.dec.PeekKind() != '}' {
			tok, err := c.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := tok.String()
			v, err := c.value(nil)
			if err != nil {
				return nil, err
			}
			members = append(members, member{units: utf16.Encode([]rune(name)), name: name, value: v})
		}
		if _, err := c.dec.ReadToken(); err != nil {
			return nil, err
		}
		slices.SortFunc(members, func(a, b member) int { return slices.Compare(a.units, b.units) })
		dst = append(dst, '{')
		for i, m := range members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.name)
			dst = append(dst, ':')
			dst = append(dst, m.value...)
		}
		return append(dst, '}'), nil
	case '[':
		if _, err := c.dec.ReadToken(); err != nil {
			return nil, err
		}
		dst = append(dst, '[')
		for i := 0; c.dec.PeekKind() != ']'; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = c.value(dst); err != nil {
				return nil, err
			}
		}
		if _, err := c.dec.ReadToken(); err != nil {
			return nil, err
		}
		return append(dst, ']'), nil
	case '"':
		tok, err := c.dec.ReadToken()
		if err != nil {
			return nil, err
		}
		return appendString(dst, tok.String()), nil
	case '0':
		raw, err := c.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return appendNumber(dst, string(raw), c.exact)
	case 't', 'f', 'n':
		raw, err := c.dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return append(dst, raw...), nil
	default:
		// Invalid input or end of input: let the decoder say which.
		_, err := c.dec.ReadToken()
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// appendString appends s (valid UTF-8) as a JSON string in the form
// RFC 8785 requires: only '"', '\\' and control characters are escaped;
// \b, \t, \n, \f, \r in their short forms, other control characters as
// \u00xx with lower-case hex digits.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			dst = append(dst, '\\', ch)
		case ch == '\b':
			dst = append(dst, '\\', 'b')
		case ch == '\t':
			dst = append(dst, '\\', 't')
		case ch == '\n':
			dst = append(dst, '\\', 'n')
		case ch == '\f':
			dst = append(dst, '\\', 'f')
		case ch == '\r':
			dst = append(dst, '\\', 'r')
		case ch < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		default:
			dst = append(dst, ch)
		}
	}
	return append(dst, '"')
}

// appendJSONString appends s as a canonical JSON string, refusing invalid
// UTF-8 (which JSON cannot carry).
func appendJSONString(dst []byte, what, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%s is not valid UTF-8", what)
	}
	return appendString(dst, s), nil
}

// appendNumber appends the canonical form of the JSON number text raw
// (already validated by the decoder). With exact set it refuses numbers
// whose value changes by conversion to a double.
func appendNumber(dst []byte, raw string, exact bool) ([]byte, error) {
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		// ParseFloat fails only on overflow for text the decoder accepted.
		return nil, fmt.Errorf("number %s is out of the range of an IEEE 754 double", truncate(raw))
	}
	start := len(dst)
	dst = appendES6Number(dst, f)
	if exact && !sameDecimal(raw, string(dst[start:])) {
		return nil, fmt.Errorf("number %s (nearest double %s): %w", truncate(raw), dst[start:], errInexactNumber)
	}
	return dst, nil
}

// truncate shortens long number texts in error messages.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// appendES6Number appends f as ECMAScript's Number.prototype.toString
// prints it (ECMA-262, Number::toString, radix 10): the shortest digits
// that round-trip, in plain notation for exponents from -7 to 20 and in
// exponential notation outside. f must be finite. -0 prints as 0.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// The shortest round-tripping digits d1.d2d3...e±x; FormatFloat picks
	// the closest such digit string, as ECMAScript requires.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	mant, expText, _ := strings.Cut(string(e), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(expText) // "+20", "-7": always a small valid integer
	k := len(digits)              // number of significant digits
	n := x + 1                    // value = 0.digits × 10^n
	switch {
	case k <= n && n <= 21: // integer: digits then zeros
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21: // decimal point inside the digits
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0: // 0.000ddd
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default: // exponential: d[.ddd]e±x
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// decimal is a number's exact value as sign × digits × 10^exp, with no
// leading or trailing zeros in digits; zero has empty digits and no sign.
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

// maxExponentDigits bounds the exponent text parseDecimal reads exactly;
// any number with a larger exponent and a non-zero mantissa is far outside
// the range of a double anyway.
const maxExponentDigits = 9

// parseDecimal returns the exact value of a JSON number text (already
// validated by the decoder). ok is false when the exponent is too large
// to represent, which only happens for numbers a double cannot hold.
func parseDecimal(s string) (d decimal, ok bool) {
	if strings.HasPrefix(s, "-") {
		d.neg = true
		s = s[1:]
	}
	mant, expText := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText = s[:i], s[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	exp := -int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	d.digits = trimmed
	if d.digits == "" {
		return decimal{}, true // zero, whatever its sign and exponent
	}
	expNeg := false
	if expText != "" {
		switch expText[0] {
		case '-':
			expNeg = true
			expText = expText[1:]
		case '+':
			expText = expText[1:]
		}
		expText = strings.TrimLeft(expText, "0")
		if len(expText) > maxExponentDigits {
			return decimal{}, false
		}
		if expText != "" {
			e, err := strconv.ParseInt(expText, 10, 64)
			if err != nil {
				return decimal{}, false
			}
			if expNeg {
				e = -e
			}
			exp += e
		}
	}
	d.exp = exp
	return d, true
}

// sameDecimal reports whether the JSON number texts a and b denote the
// same exact decimal value (-0 equals 0).
func sameDecimal(a, b string) bool {
	da, ok := parseDecimal(a)
	if !ok {
		return false
	}
	db, ok := parseDecimal(b)
	return ok && da == db
}
