package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func mustBinding(t testing.TB, principal, tool, args, pv string) string {
	t.Helper()
	var v jsontext.Value
	if args != "" {
		v = jsontext.Value(args)
	}
	b, err := Binding(principal, tool, v, pv)
	if err != nil {
		t.Fatalf("Binding(%q, %q, %s, %q): %v", principal, tool, args, pv, err)
	}
	return b
}

// TestBindingGolden pins the exact encoding: changing it would silently
// invalidate approvals stored by an earlier version.
func TestBindingGolden(t *testing.T) {
	canon := `["mcpgate approval binding v1","alice","files__delete",{"force":true,"path":"/srv/é","sizes":[1,2.5,1e+21]},"pv-1"]`
	sum := sha256.Sum256([]byte(canon))
	want := hex.EncodeToString(sum[:])
	got := mustBinding(t, "alice", "files__delete", `{ "sizes": [1.0, 25e-1, 1E21], "path": "/srv/\u00e9", "force": true }`, "pv-1")
	if got != want {
		t.Errorf("Binding = %s, want sha256(%s) = %s", got, canon, want)
	}
	sum = sha256.Sum256([]byte(`["mcpgate approval binding v1","alice","t",null,"pv"]`))
	if got, want := mustBinding(t, "alice", "t", "", "pv"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Binding(no arguments) = %s, want %s", got, want)
	}
}

func TestBindingStable(t *testing.T) {
	base := `{"path":"/srv/data","recursive":true,"limits":{"depth":3,"names":["a","b"]},"ratio":1.5,"n":1}`
	for name, args := range map[string]string{
		"reordered":           `{"recursive":true,"n":1,"ratio":1.5,"path":"/srv/data","limits":{"names":["a","b"],"depth":3}}`,
		"whitespace":          " {\n\t\"path\" : \"/srv/data\" ,\"recursive\":true , \"limits\":{ \"depth\":3,\"names\":[ \"a\" , \"b\" ]},\"ratio\":1.5,\"n\":1 } ",
		"escaped strings":     `{"p\u0061th":"\/srv\/data","recursive":true,"limits":{"depth":3,"names":["\u0061","b"]},"ratio":1.5,"n":1}`,
		"number spellings":    `{"path":"/srv/data","recursive":true,"limits":{"depth":3.0,"names":["a","b"]},"ratio":15e-1,"n":1E0}`,
		"nested reorder only": `{"limits":{"names":["a","b"],"depth":3},"path":"/srv/data","recursive":true,"ratio":1.5,"n":1}`,
	} {
		if got, want := mustBinding(t, "alice", "files__delete", args, "pv-1"), mustBinding(t, "alice", "files__delete", base, "pv-1"); got != want {
			t.Errorf("%s: binding %s differs from %s", name, got, want)
		}
	}
	// -0 and 0, and absent and null arguments, are the same.
	if mustBinding(t, "a", "t", `{"x":-0}`, "p") != mustBinding(t, "a", "t", `{"x":0}`, "p") {
		t.Error("-0 and 0 give different bindings")
	}
	if mustBinding(t, "a", "t", ``, "p") != mustBinding(t, "a", "t", `null`, "p") {
		t.Error("absent and null arguments give different bindings")
	}
}

func TestBindingSensitive(t *testing.T) {
	type tuple struct{ principal, tool, args, pv string }
	base := tuple{"alice", "files__delete", `{"path":"/srv/data","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, "pv-1"}
	variants := map[string]tuple{
		"principal":            {"bob", base.tool, base.args, base.pv},
		"principal case":       {"Alice", base.tool, base.args, base.pv},
		"tool":                 {base.principal, "files__read", base.args, base.pv},
		"policy version":       {base.principal, base.tool, base.args, "pv-2"},
		"string value":         {base.principal, base.tool, `{"path":"/srv/data2","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"unicode value":        {base.principal, base.tool, `{"path":"/srv/dat\u00e1","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"decomposed unicode":   {base.principal, base.tool, `{"path":"/srv/data\u0301","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"bool value":           {base.principal, base.tool, `{"path":"/srv/data","recursive":false,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"number value":         {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1.000000000000001,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"number as string":     {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":"1","tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"array order":          {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1,"tags":["b","a"],"o":{"k":"v"}}`, base.pv},
		"extra member":         {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"},"x":null}`, base.pv},
		"missing member":       {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1,"tags":["a","b"]}`, base.pv},
		"nested value":         {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"w"}}`, base.pv},
		"nested key":           {base.principal, base.tool, `{"path":"/srv/data","recursive":true,"n":1,"tags":["a","b"],"o":{"K":"v"}}`, base.pv},
		"trailing space value": {base.principal, base.tool, `{"path":"/srv/data ","recursive":true,"n":1,"tags":["a","b"],"o":{"k":"v"}}`, base.pv},
		"no arguments":         {base.principal, base.tool, ``, base.pv},
		"empty object":         {base.principal, base.tool, `{}`, base.pv},
	}
	want := mustBinding(t, base.principal, base.tool, base.args, base.pv)
	seen := map[string]string{want: "base"}
	for name, v := range variants {
		got := mustBinding(t, v.principal, v.tool, v.args, v.pv)
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: same binding as %s", name, prev)
		}
		seen[got] = name
	}
	// The tuple's fields cannot bleed into each other.
	if mustBinding(t, "a", "b,c", `{}`, "p") == mustBinding(t, "a,b", "c", `{}`, "p") {
		t.Error(`("a", "b,c") and ("a,b", "c") share a binding`)
	}
	if mustBinding(t, `a","b`, "c", `{}`, "p") == mustBinding(t, "a", `b","c`, `{}`, "p") {
		t.Error("quote injection: fields share a binding")
	}
	// Empty object and empty array differ from absent.
	if mustBinding(t, "a", "t", `[]`, "p") == mustBinding(t, "a", "t", `{}`, "p") {
		t.Error("[] and {} share a binding")
	}
}

func TestBindingErrors(t *testing.T) {
	tests := []struct {
		name                  string
		principal, tool, args string
		pv                    string
		inexact               bool
	}{
		{"empty principal", "", "t", `{}`, "p", false},
		{"empty tool", "a", "", `{}`, "p", false},
		{"empty policy version", "a", "t", `{}`, "", false},
		{"invalid principal", "a\xff", "t", `{}`, "p", false},
		{"invalid tool", "a", "t\xc3", `{}`, "p", false},
		{"invalid policy version", "a", "t", `{}`, "\xff", false},
		{"invalid JSON", "a", "t", `{"a":}`, "p", false},
		{"duplicate key", "a", "t", `{"a":1,"a":1}`, "p", false},
		{"invalid UTF-8 argument", "a", "t", "{\"a\":\"\xff\"}", "p", false},
		{"trailing data", "a", "t", `{}x`, "p", false},
		{"big integer", "a", "t", `{"id":9007199254740993}`, "p", true},
		{"too many digits", "a", "t", `{"x":0.12345678901234567890123}`, "p", true},
		{"underflow", "a", "t", `{"x":1e-400}`, "p", true},
		{"overflow", "a", "t", `{"x":1e400}`, "p", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Binding(tt.principal, tt.tool, jsontext.Value(tt.args), tt.pv)
			if err == nil {
				t.Fatalf("Binding = %s, want an error", b)
			}
			if tt.inexact && !errors.Is(err, errInexactNumber) {
				t.Errorf("error %v, want errInexactNumber", err)
			}
		})
	}
}

// FuzzBinding checks that Binding never panics and that it depends on the
// arguments only through their canonical form.
func FuzzBinding(f *testing.F) {
	f.Add("alice", "t", []byte(`{"b":[1.0,{"y":1,"x":2}],"a":"\u00e9"}`), "pv")
	f.Add("", "t", []byte(`{}`), "pv")
	f.Add("a", "t", []byte(`{"a":1e400}`), "pv")
	f.Fuzz(func(t *testing.T, principal, tool string, args []byte, pv string) {
		b, err := Binding(principal, tool, args, pv)
		if err != nil {
			return
		}
		if len(b) != 64 {
			t.Fatalf("binding %q is not 64 hex digits", b)
		}
		if len(args) == 0 {
			return
		}
		canon, err := canonicalJSON(args, true)
		if err != nil {
			t.Fatalf("Binding accepted %q that canonicalJSON refuses: %v", args, err)
		}
		if b2, err := Binding(principal, tool, canon, pv); err != nil || b2 != b {
			t.Fatalf("binding of canonical form %s = %s, %v; want %s", canon, b2, err, b)
		}
	})
}

func BenchmarkBinding(b *testing.B) {
	args := jsontext.Value(`{"path":"/srv/data/reports/2026/q4.csv","recursive":true,"depth":3,"filters":{"ext":[".csv",".json"],"minSize":1024,"owner":"alice"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Binding("alice", "files__delete", args, "3f2a9c"); err != nil {
			b.Fatal(err)
		}
	}
}
