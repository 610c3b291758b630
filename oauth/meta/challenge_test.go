package meta

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []Challenge
		wantErr string
	}{
		{
			name: "spec example",
			in:   []string{`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", scope="files:read"`},
			want: []Challenge{{Scheme: "Bearer", Params: []Param{
				{"resource_metadata", "https://mcp.example.com/.well-known/oauth-protected-resource"},
				{"scope", "files:read"},
			}}},
		},
		{
			name: "unquoted token values and BWS",
			in:   []string{`Bearer error = invalid_token ,realm=x`},
			want: []Challenge{{Scheme: "Bearer", Params: []Param{{"error", "invalid_token"}, {"realm", "x"}}}},
		},
		{
			name: "escapes and commas inside quotes",
			in:   []string{`Bearer error_description="a \"quoted\", b\\c = d", scope="a b"`},
			want: []Challenge{{Scheme: "Bearer", Params: []Param{{"error_description", `a "quoted", b\c = d`}, {"scope", "a b"}}}},
		},
		{
			name: "multiple challenges in one value",
			in:   []string{`Basic realm="r1", Bearer realm="r2", scope="s", Negotiate abc+/==`},
			want: []Challenge{
				{Scheme: "Basic", Params: []Param{{"realm", "r1"}}},
				{Scheme: "Bearer", Params: []Param{{"realm", "r2"}, {"scope", "s"}}},
				{Scheme: "Negotiate", Token68: "abc+/=="},
			},
		},
		{
			name: "multiple header values and bare scheme",
			in:   []string{`Basic`, `Bearer, DPoP algs="ES256"`},
			want: []Challenge{
				{Scheme: "Basic"},
				{Scheme: "Bearer"},
				{Scheme: "DPoP", Params: []Param{{"algs", "ES256"}}},
			},
		},
		{
			name: "names lower-cased, empty list elements",
			in:   []string{` , Bearer  Scope="x",, Error="e" ,`},
			want: []Challenge{{Scheme: "Bearer", Params: []Param{{"scope", "x"}, {"error", "e"}}}},
		},
		{name: "unterminated quote", in: []string{`Bearer scope="abc`}, wantErr: "unterminated quoted string"},
		{name: "dangling escape", in: []string{`Bearer scope="abc\`}, wantErr: "unterminated escape"},
		{name: "duplicate param", in: []string{`Bearer scope="a", SCOPE="b"`}, wantErr: "duplicate parameter"},
		{name: "missing value", in: []string{`Bearer realm="x", scope=`}, wantErr: "missing value"},
		{name: "token68 then param", in: []string{`Bearer scope=, realm="x"`}, wantErr: "after auth-scheme"},
		{name: "garbage scheme", in: []string{`"Bearer"`}, wantErr: "expected auth-scheme"},
		{name: "control char", in: []string{"Bearer scope=\"a\x01\""}, wantErr: "control character"},
		{name: "junk after value", in: []string{`Bearer scope="a" realm="b"`}, wantErr: "expected ','"},
		{name: "too long", in: []string{"Bearer scope=\"" + strings.Repeat("a", MaxChallengeHeaderLen) + "\""}, wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenges(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseChallenges(%q) error = %v, want containing %q (got %+v)", tt.in, err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseChallenges(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseChallenges(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseBearerChallenge(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Basic realm="x"`)
	h.Add("WWW-Authenticate", `Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", error_description="need \"write\""`)
	b, err := ParseBearerChallenge(h)
	if err != nil {
		t.Fatal(err)
	}
	want := &BearerChallenge{
		ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource",
		Scope:            "files:read files:write",
		Error:            "insufficient_scope",
		ErrorDescription: `need "write"`,
	}
	if !reflect.DeepEqual(b, want) {
		t.Fatalf("got %+v want %+v", b, want)
	}
	if b, err := ParseBearerChallenge(http.Header{"Www-Authenticate": {`Basic realm="x"`}}); b != nil || err != nil {
		t.Fatalf("no bearer: got %+v, %v", b, err)
	}
	if b, err := ParseBearerChallenge(http.Header{}); b != nil || err != nil {
		t.Fatalf("no header: got %+v, %v", b, err)
	}
}

func TestFormatChallengeRoundTrip(t *testing.T) {
	b := &BearerChallenge{
		ResourceMetadata: "https://a.example/.well-known/oauth-protected-resource/mcp",
		Scope:            "a b",
		Error:            "invalid_token",
		ErrorDescription: `bad "token" \ here, really`,
	}
	s, err := b.Format()
	if err != nil {
		t.Fatal(err)
	}
	want := `Bearer resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="a b", error="invalid_token", error_description="bad \"token\" \\ here, really"`
	if s != want {
		t.Fatalf("Format =\n%s\nwant\n%s", s, want)
	}
	got, err := ParseBearerChallenge(http.Header{"Www-Authenticate": {s}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip: got %+v want %+v", got, b)
	}
	if _, err := (&BearerChallenge{ErrorDescription: "a\r\nX-Evil: 1"}).Format(); err == nil {
		t.Fatal("Format accepted CRLF in a value")
	}
	if _, err := FormatChallenge(Challenge{Scheme: "Bad Scheme"}); err == nil {
		t.Fatal("FormatChallenge accepted invalid scheme")
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x/y", scope="a b"`,
		`Basic realm="a", Bearer error=invalid_token`,
		`Negotiate abc==, Bearer`,
		`Bearer scope="\"\\"`,
		`,,,`,
		`Bearer x="`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseChallenges([]string{s})
		if err != nil {
			return
		}
		// Whatever parses must format and parse back to the same thing
		// (except token68 challenges mixed with params, which cannot occur).
		for _, c := range cs {
			out, err := FormatChallenge(c)
			if err != nil {
				// Values with control characters cannot be parsed, so
				// formatting must succeed for parsed challenges.
				t.Fatalf("FormatChallenge(%+v) after parse of %q: %v", c, s, err)
			}
			back, err := ParseChallenges([]string{out})
			if err != nil {
				t.Fatalf("reparse of %q (from %q): %v", out, s, err)
			}
			if len(back) != 1 || !reflect.DeepEqual(back[0], c) {
				t.Fatalf("round trip of %q: %+v -> %q -> %+v", s, c, out, back)
			}
		}
	})
}

func BenchmarkParseBearerChallenge(b *testing.B) {
	h := http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBearerChallenge(h); err != nil {
			b.Fatal(err)
		}
	}
}
