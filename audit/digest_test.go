package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestCanonicalForm checks the RFC 8785 rules on which Digest rests, by
// comparing Digest with the SHA-256 of the expected canonical text.
func TestCanonicalForm(t *testing.T) {
	for _, tt := range []struct {
		name, in, canon string
	}{
		{"whitespace removed", " { \"a\" : [ 1 , 2 ] } ", `{"a":[1,2]}`},
		{"members sorted", `{"b":1,"a":2,"c":{"z":0,"y":1}}`, `{"a":2,"b":1,"c":{"y":1,"z":0}}`},
		// RFC 8785 section 3.2.3: names sorted by UTF-16 code units, so
		// U+1F600 (surrogates D83D DE00) sorts before U+FB33.
		{"utf-16 order", `{"\ufb33":1,"\ud83d\ude00":2,"\u20ac":3,"\r":4,"1":5,"\u0080":6,"\u00f6":7}`,
			"{\"\\r\":4,\"1\":5,\"\u0080\":6,\"\u00f6\":7,\"\u20ac\":3,\"\U0001F600\":2,\"\ufb33\":1}"},
		{"string escapes minimal", `"\u20ac\/\u000f\t\"\\"`, "\"\u20ac/\\u000f\\t\\\"\\\\\""},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		// Numbers as ECMAScript formats doubles (section 3.2.2.3).
		{"zero", `0`, `0`},
		{"negative zero", `-0`, `0`},
		{"trailing zeros", `4.50`, `4.5`},
		{"exponent small", `2e-3`, `0.002`},
		{"exponent tiny", `0.000000000000000000000000001`, `1e-27`},
		{"exponent large", `1E30`, `1e+30`},
		{"integer boundary", `1e21`, `1e+21`},
		{"below boundary", `1e20`, `100000000000000000000`},
		{"float rounding", `333333333.33333329`, `333333333.3333333`},
		{"max safe integer", `9007199254740991`, `9007199254740991`},
		{"beyond 2^53 rounds", `9007199254740993`, `9007199254740992`},
		{"negative", `-1.5E+2`, `-150`},
		{"nested", `{"a":{"b":[{"d":1,"c":2}]}}`, `{"a":{"b":[{"c":2,"d":1}]}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Digest(jsontext.Value(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(tt.canon))
			if want := hex.EncodeToString(sum[:]); got != want {
				c := jsontext.Value(tt.in).Clone()
				c.Canonicalize()
				t.Errorf("Digest(%s): canonical form %s, want %s", tt.in, c, tt.canon)
			}
		})
	}
}

func TestDigestRejects(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1,"a":1}`, "\"\xff\"", `[1,]`, `01`, `NaN`, `{"a":1} x`} {
		if d, err := Digest(jsontext.Value(in)); err == nil {
			t.Errorf("Digest(%q) = %s, want error", in, d)
		}
	}
}

// FuzzDigest checks that Digest never panics and is a function of the
// canonical form: re-digesting the canonical text gives the same digest.
func FuzzDigest(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.0,"x"]}`, `"\u20ac"`, `1e300`, `{"a":{"a":{}}}`, `[]`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Digest(jsontext.Value(b))
		if err != nil {
			return
		}
		c := jsontext.Value(b).Clone()
		if err := c.Canonicalize(); err != nil {
			t.Fatalf("Digest accepted what Canonicalize refuses: %v", err)
		}
		d2, err := Digest(c)
		if err != nil || d2 != d {
			t.Fatalf("digest of canonical form %s = %s, %v; want %s", c, d2, err, d)
		}
	})
}
