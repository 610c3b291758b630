package jsonraw

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

var fuzzSeeds = []string{
	``, `null`, `{}`, ` { } `, `[]`, `"s"`, `1`, `{"a":1}`,
	`{"name":"srv__tool","arguments":{"x":[1,2,{"y":null}]},"_meta":{"progressToken":"t"}}`,
	"{ \"a\" : 1 ,\n\"b\": [1, 2] }",
	`{"\u0061":"\u00e9","b\"c":"x\\y"}`,
	`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":1} {}`, `{"a":`, "{\"a\":\"\xff\"}",
	`{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"up-1"}}}`,
}

// compact returns v without insignificant whitespace.
func compact(t *testing.T, v jsontext.Value) string {
	t.Helper()
	v = bytes.Clone(v)
	if err := v.Compact(); err != nil {
		t.Fatalf("Compact(%#q): %v", v, err)
	}
	return string(v)
}

// refMembers reads the members of the valid JSON object v with a plain
// decoder: the reference Parse is checked against.
func refMembers(t *testing.T, v []byte) (names []string, values []string) {
	t.Helper()
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		t.Fatal(err)
	}
	for d.PeekKind() != '}' {
		n, err := d.ReadToken()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n.String())
		val, err := d.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, string(val))
	}
	return names, values
}

// FuzzParse checks that Parse accepts exactly the valid objects (and
// empty input and null), that Bytes gives back the same object, and that
// edits leave the other members alone.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "a", "x")
	}
	f.Fuzz(func(t *testing.T, data []byte, name, s string) {
		in := bytes.Clone(data)
		o, err := Parse(data)
		v := jsontext.Value(data)
		trimmed := trimSpace(v)
		wantOK := len(trimmed) == 0 || (v.IsValid() && (v.Kind() == '{' || v.Kind() == 'n'))
		if (err == nil) != wantOK {
			t.Fatalf("Parse(%#q) error = %v, want ok = %v", data, err, wantOK)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "jsonraw: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			return
		}
		out := o.Bytes()
		if !out.IsValid() {
			t.Fatalf("Parse(%#q).Bytes() = %#q, invalid", data, out)
		}
		if v.Kind() == '{' {
			if got, want := compact(t, out), compact(t, v); got != want {
				t.Fatalf("Parse(%#q).Bytes() = %#q, want %#q", data, got, want)
			}
			names, values := refMembers(t, data)
			if o.Len() != len(names) {
				t.Fatalf("Len() = %d, want %d", o.Len(), len(names))
			}
			for i, n := range names {
				if got, ok := o.Get(n); !ok || string(got) != values[i] {
					t.Fatalf("Get(%q) = %#q, %v, want %#q", n, got, ok, values[i])
				}
				if got, ok, err := GetPath(v, n); err != nil || !ok || string(got) != values[i] {
					t.Fatalf("GetPath(%q) = %#q, %v, %v, want %#q", n, got, ok, err, values[i])
				}
				str, ok, err := o.String(n)
				if isString := values[i][0] == '"'; !ok || (err == nil) != isString {
					t.Fatalf("String(%q) = %q, %v, %v", n, str, ok, err)
				} else if isString {
					want, _ := jsontext.AppendUnquote(nil, values[i])
					if str != string(want) {
						t.Fatalf("String(%q) = %q, want %q", n, str, want)
					}
				}
			}
		} else if string(out) != `{}` || o.Len() != 0 {
			t.Fatalf("Parse(%#q).Bytes() = %#q, want {}", data, out)
		}

		// Edit: set name to the string s, and check that only it changed.
		_, had := o.Get(name)
		before := o.Len()
		if err := o.SetString(name, s); err != nil {
			if !strings.Contains(err.Error(), "invalid UTF-8") {
				t.Fatalf("SetString(%q, %q): %v", name, s, err)
			}
			return
		}
		if want := before + map[bool]int{true: 0, false: 1}[had]; o.Len() != want {
			t.Fatalf("Len() after SetString = %d, want %d", o.Len(), want)
		}
		edited := o.Bytes()
		e, err := Parse(edited)
		if err != nil {
			t.Fatalf("Parse(%#q) after SetString: %v", edited, err)
		}
		if got, ok, err := e.String(name); err != nil || !ok || got != s {
			t.Fatalf("String(%q) after SetString(%q) = %q, %v, %v", name, s, got, ok, err)
		}
		e.Delete(name)
		o.Delete(name)
		if got, want := compact(t, e.Bytes()), compact(t, o.Bytes()); got != want {
			t.Fatalf("after Delete: %#q, want %#q", got, want)
		}
		if !bytes.Equal(data, in) {
			t.Fatalf("input modified: %#q, was %#q", data, in)
		}
	})
}

// FuzzSetPath checks that SetPath sets exactly the value at the path,
// and fails only when it must.
func FuzzSetPath(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), []byte(`"gw-1"`), "_meta|io.modelcontextprotocol/related-task|taskId")
		f.Add([]byte(s), []byte(`{"x":[1]}`), "a")
	}
	f.Add([]byte(`{"a":{"b":true}}`), []byte(`1`), "a|b|c")
	f.Add([]byte(`{"a":null}`), []byte(` 1 `), "a|b")
	f.Fuzz(func(t *testing.T, raw, v []byte, pathStr string) {
		path := strings.Split(pathStr, "|")
		if len(path) > 6 {
			return
		}
		in := bytes.Clone(raw)
		out, err := SetPath(raw, v, path...)
		if !bytes.Equal(raw, in) {
			t.Fatalf("input modified: %#q, was %#q", raw, in)
		}
		// SetPath must succeed if v and the names are valid and raw is an
		// object with objects (or nothing) along the path.
		r := jsontext.Value(raw)
		wantOK := len(trimSpace(r)) == 0 || (r.IsValid() && (r.Kind() == '{' || r.Kind() == 'n'))
		wantOK = wantOK && jsontext.Value(v).IsValid()
		for _, name := range path {
			if _, err := jsontext.AppendQuote(nil, name); err != nil {
				wantOK = false
			}
		}
		for i := 1; wantOK && i < len(path); i++ {
			at, ok, err := GetPath(raw, path[:i]...)
			if err != nil {
				wantOK = false
			} else if !ok || at.Kind() == 'n' {
				break
			} else if at.Kind() != '{' {
				wantOK = false
			}
		}
		if (err == nil) != wantOK {
			t.Fatalf("SetPath(%#q, %#q, %q) = %#q, %v, want ok = %v", raw, v, path, out, err, wantOK)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "jsonraw: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			return
		}
		if !out.IsValid() {
			t.Fatalf("SetPath(%#q, %#q, %q) = %#q, invalid", raw, v, path, out)
		}
		got, ok, err := GetPath(out, path...)
		if err != nil || !ok || string(got) != string(trimSpace(v)) {
			t.Fatalf("GetPath(SetPath(%#q, %#q, %q)) = %#q, %v, %v", raw, v, path, got, ok, err)
		}
		// Every other top-level member is unchanged and in its place.
		before, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		after, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		before.Delete(path[0])
		after.Delete(path[0])
		if string(before.Bytes()) != string(after.Bytes()) {
			t.Fatalf("SetPath(%#q, %#q, %q) changed other members: %#q", raw, v, path, out)
		}
	})
}

// FuzzElements checks that Elements accepts exactly the valid arrays (and
// empty input and null), and that JoinArray gives back the same array.
func FuzzElements(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`[{"a":1}, "s", 3 ,[ ]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := jsontext.Value(data)
		els, err := Elements(v)
		wantOK := len(trimSpace(v)) == 0 || (v.IsValid() && (v.Kind() == '[' || v.Kind() == 'n'))
		if (err == nil) != wantOK {
			t.Fatalf("Elements(%#q) error = %v, want ok = %v", data, err, wantOK)
		}
		if err != nil {
			return
		}
		out := JoinArray(els)
		if !out.IsValid() {
			t.Fatalf("JoinArray(Elements(%#q)) = %#q, invalid", data, out)
		}
		if v.Kind() == '[' {
			if got, want := compact(t, out), compact(t, v); got != want {
				t.Fatalf("JoinArray(Elements(%#q)) = %#q, want %#q", data, got, want)
			}
			d := jsontext.NewDecoder(bytes.NewReader(data))
			d.ReadToken()
			for i := 0; ; i++ {
				ref, err := d.ReadValue()
				if err != nil {
					if i != len(els) {
						t.Fatalf("%d elements, want %d", len(els), i)
					}
					break
				}
				if string(ref) != string(els[i]) {
					t.Fatalf("element %d = %#q, want %#q", i, els[i], ref)
				}
			}
		} else if string(out) != `[]` {
			t.Fatalf("JoinArray(Elements(%#q)) = %#q, want []", data, out)
		}
	})
}
