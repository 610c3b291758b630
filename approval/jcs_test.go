package approval

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"RFC 8785 section 3.2.2 example",
			`{
			  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
			  "literals": [null, true, false]
			}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"RFC 8785 section 3.2.3 sorting by UTF-16 code units",
			`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		// U+10000 is D800 DC00 in UTF-16: it sorts before U+E000..U+FFFF,
		// although its code point (and UTF-8) is larger.
		{"supplementary before high BMP", `{"\uffff":1,"\ud800\udc00":2,"\ue000":3,"z":4}`,
			"{\"z\":4,\"\U00010000\":2,\"\ue000\":3,\"\uffff\":1}"},
		{"prefix sorts first", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
		{"nested key order", ` { "b" : { "z" : 1 , "a" : [ { "y" : 2 , "x" : 1 } , [ ] , { } ] } , "a" : 0 } `,
			`{"a":0,"b":{"a":[{"x":1,"y":2},[],{}],"z":1}}`},
		{"array order kept", `[3,1,2]`, `[3,1,2]`},
		{"escapes", `"\u0000\u0007\b\t\n\u000b\f\r\u001f \u007f\u0080\u2028\u2029\/\"\\é\u00e9"`,
			"\"\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f \x7f\u0080\u2028\u2029/\\\"\\\\éé\""},
		{"raw unicode kept", `"日本語 😀"`, `"日本語 😀"`},
		{"surrogate pair escape", `"\ud83d\ude00"`, `"😀"`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"scalar string", `"x"`, `"x"`},
		{"scalar number", ` 1.0 `, `1`},
		{"numbers", `[1.0, 1, 1e0, 10e-1, 100, 1E2, 1e+2, -0, 0.0, -0.0, 0e10, 1e21, 1e20, 1.5e21, 12e-1, 1e-6, 1e-7, 0.000001234, 1.234e-7, -1.5e-10, 0.1, 5e-324, 1.7976931348623157e308, 9007199254740992, 123456789012345680000, 2e-3, 1E30]`,
			`[1,1,1,1,100,100,100,0,0,0,0,1e+21,100000000000000000000,1.5e+21,1.2,0.000001,1e-7,0.000001234,1.234e-7,-1.5e-10,0.1,5e-324,1.7976931348623157e+308,9007199254740992,123456789012345680000,0.002,1e+30]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonicalJSON([]byte(tt.in), false)
			if err != nil {
				t.Fatalf("canonicalJSON(%s): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("canonicalJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			// Canonical form is a fixed point.
			again, err := canonicalJSON(got, false)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("canonicalJSON(canonical) = %s, %v; want unchanged", again, err)
			}
		})
	}
}

func TestCanonicalJSONErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"whitespace only", `   `},
		{"truncated", `{"a":`},
		{"trailing value", `{} {}`},
		{"trailing garbage", `1 x`},
		{"duplicate name", `{"a":1,"a":2}`},
		{"duplicate name by escape", `{"a":1,"\u0061":2}`},
		{"nested duplicate", `{"x":[{"k":1,"k":1}]}`},
		{"invalid UTF-8", "\"\xff\""},
		{"invalid UTF-8 name", "{\"\xc3\x28\":1}"},
		{"lone high surrogate", `"\ud800"`},
		{"lone low surrogate", `"\udc00"`},
		{"single quotes", `{'a':1}`},
		{"trailing comma", `[1,]`},
		{"leading zero", `01`},
		{"NaN", `NaN`},
		{"overflow", `1e400`},
		{"negative overflow", `[-1.8e308]`},
		{"deep nesting", string(bytes.Repeat([]byte("["), 20000)) + string(bytes.Repeat([]byte("]"), 20000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := canonicalJSON([]byte(tt.in), false); err == nil {
				t.Errorf("canonicalJSON(%.40q) = %s, want an error", tt.in, got)
			}
		})
	}
}

func TestCanonicalJSONExactNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means errInexactNumber or a range error
	}{
		{`1.0`, `1`},
		{`-0`, `0`},
		{`0e99999999999999`, `0`},
		{`1e21`, `1e+21`},
		{`0.1`, `0.1`},
		{`0.30000000000000004`, `0.30000000000000004`},
		{`9007199254740992`, `9007199254740992`},
		{`9007199254740993`, ``}, // 2⁵³+1 rounds to 2⁵³
		{`123456789012345678`, ``},
		// 2⁶⁴ is a double, but its canonical text 18446744073709552000 is
		// another integer: a big-integer reader would see two values.
		{`18446744073709551616`, ``},
		{`18446744073709552000`, `18446744073709552000`},
		{`333333333.33333329`, ``},
		{`1e-400`, ``},
		{`1e400`, ``},
		{`1e99999999999`, ``},
		{`1.00000000000000000000000000001`, ``},
		{`5e-324`, `5e-324`},
		{`1.5e300`, `1.5e+300`},
		{`100e-2`, `1`},
	}
	for _, tt := range tests {
		got, err := canonicalJSON([]byte(tt.in), true)
		if tt.want == "" {
			if err == nil {
				t.Errorf("exact canonicalJSON(%s) = %s, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("exact canonicalJSON(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	// Inexact numbers are reported as such (not as syntax errors).
	if _, err := canonicalJSON([]byte(`{"id":9007199254740993}`), true); !errors.Is(err, errInexactNumber) {
		t.Errorf("inexact number error = %v, want errInexactNumber", err)
	}
}

// TestES6NumberAgainstJSONText compares the number formatting with the
// independent RFC 8785 implementation in jsontext over many random
// doubles, and checks that every output parses back to the same double.
func TestES6NumberAgainstJSONText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	special := []float64{0, 1, -1, 0.1, 1e21, 1e-7, 1e-6, 1e20, 999999999999999900000, 5e-324, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, 1 << 53, 1<<53 + 2, 4.35, 0.000001, 123e-20, 2.2250738585072014e-308}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := range n + len(special) {
		var f float64
		if i < len(special) {
			f = special[i]
		} else {
			switch i % 3 {
			case 0: // any bit pattern
				f = math.Float64frombits(r.Uint64())
			case 1: // around the notation switch points
				f = math.Ldexp(r.Float64()+0.5, r.IntN(160)-80)
			default: // short decimals
				f, _ = strconv.ParseFloat(strconv.Itoa(r.IntN(1e6))+"e"+strconv.Itoa(r.IntN(60)-30), 64)
			}
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		got := string(appendES6Number(nil, f))
		back, err := strconv.ParseFloat(got, 64)
		if err != nil || (back != f && !(f == 0 && back == 0)) {
			t.Fatalf("%b: formatted %s parses back as %v, %v", f, got, back, err)
		}
		v := jsontext.Value(strconv.FormatFloat(f, 'g', -1, 64))
		if err := v.Canonicalize(); err != nil {
			t.Fatalf("jsontext canonicalize %v: %v", f, err)
		}
		if got != string(v) {
			t.Fatalf("%v (%#x): got %s, jsontext %s", f, math.Float64bits(f), got, v)
		}
	}
}

// FuzzCanonicalJSON checks, on arbitrary input, that canonicalization
// never panics, yields valid JSON that is its own canonical form, agrees
// with jsontext's RFC 8785 implementation, and that exact mode either
// agrees with plain mode or refuses.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1.0,"x",null,true,{"d":-0,"c":1e21}]}`, `"\u00e9\ud83d\ude00"`, `[1e-7,0.000001,123456789012345678901234]`,
		`{"\ue000":1,"\ud800\udc00":2}`, `{"a":1,"a":2}`, `1e400`, "\"\xff\"", `[[[[]]]]`, `{"k":"\u0000\u001f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := canonicalJSON(in, false)
		exact, exactErr := canonicalJSON(in, true)
		if err != nil {
			if exactErr == nil {
				t.Fatalf("exact mode accepted %q that plain mode refused: %v", in, err)
			}
			return
		}
		if exactErr == nil && !bytes.Equal(exact, got) {
			t.Fatalf("exact %s != plain %s", exact, got)
		}
		if !jsontext.Value(got).IsValid() {
			t.Fatalf("canonical form %q of %q is not valid JSON", got, in)
		}
		again, err := canonicalJSON(got, false)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("canonical form %s is not a fixed point: %s, %v", got, again, err)
		}
		v := jsontext.Value(bytes.Clone(in))
		if err := v.Canonicalize(); err == nil && !bytes.Equal(v, got) {
			t.Fatalf("input %q: got %s, jsontext %s", in, got, v)
		}
	})
}
