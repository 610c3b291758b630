package jsonraw

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    string // Bytes, if no error
		len     int
		wantErr string // substring of the error
	}{
		{in: ``, want: `{}`},
		{in: " \n\t", want: `{}`},
		{in: `null`, want: `{}`},
		{in: ` null `, want: `{}`},
		{in: `{}`, want: `{}`},
		{in: ` { } `, want: `{}`},
		{in: `{"a":1}`, want: `{"a":1}`, len: 1},
		{in: "{ \"a\" : 1 ,\n\"b\": [1, 2] }", want: "{\"a\" : 1,\"b\": [1, 2]}", len: 2},
		{in: `{"z":{"y":{"x":null}},"a":"s","m":true}`, want: `{"z":{"y":{"x":null}},"a":"s","m":true}`, len: 3},
		{in: `{"\u0061":1,"b\"c":2}`, want: `{"\u0061":1,"b\"c":2}`, len: 2},
		{in: `[1]`, wantErr: "got a JSON array, want an object"},
		{in: `"s"`, wantErr: "got a JSON string, want an object"},
		{in: `12`, wantErr: "got a JSON number, want an object"},
		{in: `true`, wantErr: "got a JSON boolean, want an object"},
		{in: `false`, wantErr: "got a JSON boolean, want an object"},
		{in: `{`, wantErr: "unexpected EOF"},
		{in: `{"a"}`, wantErr: "invalid character"},
		{in: `{"a":1,}`, wantErr: "invalid character"},
		{in: `x`, wantErr: "invalid character"},
		{in: `nul`, wantErr: "EOF"},
		{in: `{} {}`, wantErr: "data after the top-level value"},
		{in: `null 1`, wantErr: "data after the top-level value"},
		{in: `{}x`, wantErr: "invalid character"},
		{in: `{"a":1,"a":2}`, wantErr: "duplicate object member name"},
		{in: `{"a":1,"\u0061":2}`, wantErr: "duplicate object member name"},
		{in: `{"a":{"b":1,"b":2}}`, wantErr: "duplicate object member name"},
		{in: "{\"a\":\"\xff\"}", wantErr: "invalid UTF-8"},
	}
	for _, tt := range tests {
		o, err := Parse(jsontext.Value(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "jsonraw: ") {
				t.Errorf("Parse(%#q) error = %v, want one with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%#q): %v", tt.in, err)
			continue
		}
		if got := o.Bytes(); string(got) != tt.want || !got.IsValid() {
			t.Errorf("Parse(%#q).Bytes() = %#q, want %#q", tt.in, got, tt.want)
		}
		if o.Len() != tt.len {
			t.Errorf("Parse(%#q).Len() = %d, want %d", tt.in, o.Len(), tt.len)
		}
	}
}

func TestGet(t *testing.T) {
	o, err := Parse(jsontext.Value(`{"name":"x\"y", "n" : {"deep":[1,2]} ,"\u0065sc":"\u00e9","nil":null,"num":3}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		raw     string // Get
		ok      bool
		str     string // String
		wantErr string
	}{
		{name: "name", raw: `"x\"y"`, ok: true, str: `x"y`},
		{name: "n", raw: `{"deep":[1,2]}`, ok: true, wantErr: `member "n" is a JSON object, not a string`},
		{name: "esc", raw: `"\u00e9"`, ok: true, str: "é"},
		{name: `\u0065sc`},
		{name: "nil", raw: `null`, ok: true, wantErr: `member "nil" is a JSON null, not a string`},
		{name: "num", raw: `3`, ok: true, wantErr: "JSON number"},
		{name: "missing"},
		{name: ""},
	}
	for _, tt := range tests {
		v, ok := o.Get(tt.name)
		if string(v) != tt.raw || ok != tt.ok {
			t.Errorf("Get(%q) = %#q, %v, want %#q, %v", tt.name, v, ok, tt.raw, tt.ok)
		}
		s, ok, err := o.String(tt.name)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !ok {
				t.Errorf("String(%q) = %q, %v, %v, want error with %q", tt.name, s, ok, err, tt.wantErr)
			}
			continue
		}
		if err != nil || s != tt.str || ok != tt.ok {
			t.Errorf("String(%q) = %q, %v, %v, want %q, %v", tt.name, s, ok, err, tt.str, tt.ok)
		}
	}
}

// edit is one change made to an Object in TestEdit.
type edit struct {
	op, name, value string // op is "set", "setString" or "delete"
}

func TestEdit(t *testing.T) {
	tests := []struct {
		in      string
		edits   []edit
		want    string
		wantErr string
	}{
		{`{"name":"a","arguments":{"x":1}}`, []edit{{"setString", "name", "b"}}, `{"name":"b","arguments":{"x":1}}`, ""},
		{`{"arguments":{"x":1}}`, []edit{{"setString", "name", "b"}}, `{"arguments":{"x":1},"name":"b"}`, ""},
		{``, []edit{{"setString", "name", "b"}}, `{"name":"b"}`, ""},
		{`null`, []edit{{"set", "a", "1"}, {"set", "b", "[]"}}, `{"a":1,"b":[]}`, ""},
		{`{"a":1,"_meta":{"progressToken":"t"},"z":[1]}`, []edit{{"set", "_meta", `{"progressToken":"g1"}`}}, `{"a":1,"_meta":{"progressToken":"g1"},"z":[1]}`, ""},
		{`{"a":1,"b":2}`, []edit{{"delete", "a", ""}}, `{"b":2}`, ""},
		{`{"a":1,"b":2,"c":3}`, []edit{{"delete", "b", ""}, {"delete", "x", ""}}, `{"a":1,"c":3}`, ""},
		{`{"a":1}`, []edit{{"delete", "a", ""}}, `{}`, ""},
		{`{"\u006eame":"a"}`, []edit{{"setString", "name", "b"}}, `{"\u006eame":"b"}`, ""},
		{`{"\u006eame" : "a"}`, []edit{{"set", "name", `"b"`}}, `{"\u006eame":"b"}`, ""},
		{`{"a":1}`, []edit{{"set", "a", " \n2\t"}}, `{"a":2}`, ""},
		{`{"a":1}`, []edit{{"setString", "a", "q\"\\\n<é>"}}, `{"a":"q\"\\\n<é>"}`, ""},
		{`{"a":1}`, []edit{{"setString", "é\"", ""}}, `{"a":1,"é\"":""}`, ""},
		{`{"a":1}`, []edit{{"delete", "a", ""}, {"set", "a", "2"}}, `{"a":2}`, ""},
		{`{"a":1}`, []edit{{"set", "b", "2"}, {"set", "a", "3"}, {"set", "b", "4"}}, `{"a":3,"b":4}`, ""},
		{`{}`, []edit{{"set", "a", ""}}, "", `member "a": empty value`},
		{`{}`, []edit{{"set", "a", " "}}, "", `member "a": empty value`},
		{`{}`, []edit{{"set", "a", "1 2"}}, "", `member "a": invalid JSON value`},
		{`{}`, []edit{{"set", "a", `{"x":1,"x":1}`}}, "", "invalid JSON value"},
		{`{}`, []edit{{"set", "a", `{`}}, "", "invalid JSON value"},
		{`{}`, []edit{{"set", "\xff", `1`}}, "", "invalid UTF-8"},
		{`{}`, []edit{{"setString", "a", "\xff"}}, "", "invalid UTF-8"},
		{`{}`, []edit{{"setString", "\xff", "a"}}, "", "invalid UTF-8"},
	}
	for _, tt := range tests {
		o, err := Parse(jsontext.Value(tt.in))
		if err != nil {
			t.Errorf("Parse(%#q): %v", tt.in, err)
			continue
		}
		for _, e := range tt.edits {
			switch e.op {
			case "set":
				err = o.Set(e.name, jsontext.Value(e.value))
			case "setString":
				err = o.SetString(e.name, e.value)
			case "delete":
				o.Delete(e.name)
			}
			if err != nil {
				break
			}
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "jsonraw: ") {
				t.Errorf("%#q %v: error = %v, want one with %q", tt.in, tt.edits, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%#q %v: %v", tt.in, tt.edits, err)
			continue
		}
		if got := o.Bytes(); string(got) != tt.want || !got.IsValid() {
			t.Errorf("%#q %v: Bytes() = %#q, want %#q", tt.in, tt.edits, got, tt.want)
		}
	}
}

func TestZeroObject(t *testing.T) {
	var o Object
	if o.Len() != 0 || string(o.Bytes()) != `{}` {
		t.Errorf("zero Object = %d, %s", o.Len(), o.Bytes())
	}
	if _, ok := o.Get("a"); ok {
		t.Error("zero Object has a member")
	}
	o.Delete("a")
	if err := o.SetString("uri", "file:///x"); err != nil {
		t.Fatal(err)
	}
	if err := o.Set("ttl", jsontext.Value("null")); err != nil {
		t.Fatal(err)
	}
	if got := string(o.Bytes()); got != `{"uri":"file:///x","ttl":null}` {
		t.Errorf("Bytes() = %s", got)
	}
}

// TestAliasing checks that Set copies its value and that Bytes does not
// share memory with the input.
func TestAliasing(t *testing.T) {
	in := []byte(`{"a":1,"b":2}`)
	o, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	v := []byte(`"xyz"`)
	if err := o.Set("a", v); err != nil {
		t.Fatal(err)
	}
	copy(v, `"abc"`)
	out := o.Bytes()
	copy(in, `{"q":3,"r":4}`)
	if string(out) != `{"a":"xyz","b":2}` {
		t.Errorf("Bytes() = %s", out)
	}
}

func TestGetPath(t *testing.T) {
	tests := []struct {
		in      string
		path    []string
		want    string
		ok      bool
		wantErr string
	}{
		{`{"_meta":{"progressToken":7}}`, []string{"_meta", "progressToken"}, `7`, true, ""},
		{`{"_meta":{"progressToken":7}}`, []string{"_meta"}, `{"progressToken":7}`, true, ""},
		{`{"_meta":{"progressToken":7}}`, nil, `{"_meta":{"progressToken":7}}`, true, ""},
		{``, nil, ``, false, ""},
		{``, []string{"a", "b"}, ``, false, ""},
		{`{"_meta":null}`, []string{"_meta", "progressToken"}, ``, false, ""},
		{`{"_meta":{}}`, []string{"_meta", "progressToken"}, ``, false, ""},
		{`{"a":{"b":{"c":[1]}}}`, []string{"a", "b", "c"}, `[1]`, true, ""},
		{`{"a":{"b":{"c":[1]}}}`, []string{"a", "x", "c"}, ``, false, ""},
		{`{"a":{"b":"s"}}`, []string{"a", "b", "c"}, ``, false, `jsonraw: at "a"."b": got a JSON string, want an object`},
		{`[]`, []string{"a"}, ``, false, `jsonraw: got a JSON array, want an object`},
		{`{"a":[]}`, []string{"a", "0"}, ``, false, `jsonraw: at "a": got a JSON array, want an object`},
		{`{"x":[{"a":1}],"a":{"y":{"b":2},"b" : 3 ,"z":[]},"c":{"d":4}}`, []string{"a", "b"}, `3`, true, ""},
		{`{"\u0061":{"b":[1, 2]}}`, []string{"a", "b"}, `[1, 2]`, true, ""},
		{`{"a":1,"a":2}`, []string{"a"}, ``, false, "duplicate object member name"},
		{`{"a":{"b":1,"c":{"d":1,"d":2}}}`, []string{"a", "b"}, ``, false, "duplicate object member name"},
		{`{"a":1} x`, []string{"a"}, ``, false, "invalid character"},
		{`{"a":1} {}`, []string{"a"}, ``, false, "data after the top-level value"},
		{`{"b":null,"a":1}`, []string{"b", "c"}, ``, false, ""},
		{`{"b":null,"a":1,}`, []string{"b", "c"}, ``, false, "invalid character"},
		{`{"a":1`, []string{"a"}, ``, false, "unexpected EOF"},
		{`   `, []string{"a"}, ``, false, ""},
	}
	for _, tt := range tests {
		v, ok, err := GetPath(jsontext.Value(tt.in), tt.path...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "jsonraw: ") {
				t.Errorf("GetPath(%#q, %q) error = %v, want %q", tt.in, tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(v) != tt.want || ok != tt.ok {
			t.Errorf("GetPath(%#q, %q) = %#q, %v, %v, want %#q, %v", tt.in, tt.path, v, ok, err, tt.want, tt.ok)
		}
	}
}

func TestSetPath(t *testing.T) {
	const rel = "io.modelcontextprotocol/related-task"
	tests := []struct {
		in      string
		v       string
		path    []string
		want    string
		wantErr string
	}{
		{`{"x":1,"_meta":{"` + rel + `":{"taskId":"up-1"},"y":2},"z":3}`, `"gw-1"`, []string{"_meta", rel, "taskId"},
			`{"x":1,"_meta":{"` + rel + `":{"taskId":"gw-1"},"y":2},"z":3}`, ""},
		{`{"x":1}`, `"gw-1"`, []string{"_meta", rel, "taskId"}, `{"x":1,"_meta":{"` + rel + `":{"taskId":"gw-1"}}}`, ""},
		{``, `1`, []string{"a"}, `{"a":1}`, ""},
		{`null`, `1`, []string{"a", "b"}, `{"a":{"b":1}}`, ""},
		{`{"a":null}`, `1`, []string{"a", "b"}, `{"a":{"b":1}}`, ""},
		{`{"a": { "c" : 0 } }`, ` 1 `, []string{"a", "b"}, `{"a":{"c" : 0,"b":1}}`, ""},
		{`{}`, `1`, nil, ``, "jsonraw: SetPath: empty path"},
		{`{}`, `1 2`, []string{"a"}, ``, `jsonraw: SetPath "a": invalid JSON value`},
		{`{}`, ``, []string{"a"}, ``, `jsonraw: SetPath "a": invalid JSON value`},
		{`[]`, `1`, []string{"a"}, ``, `jsonraw: got a JSON array, want an object`},
		{`{"a":{"b":true}}`, `1`, []string{"a", "b", "c"}, ``, `jsonraw: at "a"."b": got a JSON boolean, want an object`},
		{`{"a":1,"a":2}`, `1`, []string{"b"}, ``, `duplicate object member name`},
	}
	for _, tt := range tests {
		got, err := SetPath(jsontext.Value(tt.in), jsontext.Value(tt.v), tt.path...)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SetPath(%#q, %#q, %q) error = %v, want %q", tt.in, tt.v, tt.path, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want || !got.IsValid() {
			t.Errorf("SetPath(%#q, %#q, %q) = %#q, %v, want %#q", tt.in, tt.v, tt.path, got, err, tt.want)
		}
	}
}

func TestElements(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		join    string
		wantErr string
	}{
		{``, nil, `[]`, ""},
		{`null`, nil, `[]`, ""},
		{`[]`, nil, `[]`, ""},
		{`[{"a":1}, "s", 3 ,[ ]]`, []string{`{"a":1}`, `"s"`, `3`, `[ ]`}, `[{"a":1},"s",3,[ ]]`, ""},
		{` [null] `, []string{`null`}, `[null]`, ""},
		{`{}`, nil, ``, "jsonraw: got a JSON object, want an array"},
		{`[1,]`, nil, ``, "invalid character"},
		{`[1] 2`, nil, ``, "data after the top-level value"},
		{`[{"a":1,"a":1}]`, nil, ``, "duplicate object member name"},
	}
	for _, tt := range tests {
		els, err := Elements(jsontext.Value(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Elements(%#q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(els) != len(tt.want) {
			t.Errorf("Elements(%#q) = %#q, %v, want %#q", tt.in, els, err, tt.want)
			continue
		}
		for i := range els {
			if string(els[i]) != tt.want[i] {
				t.Errorf("Elements(%#q)[%d] = %#q, want %#q", tt.in, i, els[i], tt.want[i])
			}
		}
		if got := JoinArray(els); string(got) != tt.join || !got.IsValid() {
			t.Errorf("JoinArray(Elements(%#q)) = %#q, want %#q", tt.in, got, tt.join)
		}
	}
}

func TestKindName(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{`{}`, "object"}, {`[]`, "array"}, {`""`, "string"}, {`-1.5e3`, "number"},
		{`true`, "boolean"}, {`false`, "boolean"}, {`null`, "null"}, {``, "invalid"},
	} {
		if got := KindName(jsontext.Value(tt.in).Kind()); got != tt.want {
			t.Errorf("KindName(%#q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := KindName(jsontext.KindEndObject); got != "invalid" {
		t.Errorf("KindName('}') = %q", got)
	}
}

// TestBounds checks that Parse, Elements and GetPath allocate no more
// than a small multiple of their input beyond what jsontext needs to read
// it, however the input is shaped.
func TestBounds(t *testing.T) {
	const n = 1 << 16
	var members strings.Builder
	members.WriteByte('{')
	for i := range n {
		if i > 0 {
			members.WriteByte(',')
		}
		members.WriteString(`"`)
		members.WriteString(base36(i))
		members.WriteString(`":0`)
	}
	members.WriteByte('}')
	deep := `{"a":` + strings.Repeat(`[`, 9000) + strings.Repeat(`]`, 9000) + `}`
	deepObj := strings.Repeat(`{"a":`, 9000) + `1` + strings.Repeat(`}`, 9000)
	elems := `[` + strings.Repeat(`0,`, n) + `0]`
	tests := []struct {
		name string
		in   string
		f    func(jsontext.Value) error
	}{
		{"many members", members.String(), func(v jsontext.Value) error { _, err := Parse(v); return err }},
		{"deep array", deep, func(v jsontext.Value) error { _, err := Parse(v); return err }},
		{"deep object", deepObj, func(v jsontext.Value) error { _, err := Parse(v); return err }},
		{"many elements", elems, func(v jsontext.Value) error { _, err := Elements(v); return err }},
		{"deep path", deepObj, func(v jsontext.Value) error {
			_, _, err := GetPath(v, "a", "a", "a", "a", "a", "a", "a", "a")
			return err
		}},
	}
	for _, tt := range tests {
		v := jsontext.Value(tt.in)
		if err := tt.f(v); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		// What jsontext itself allocates to read v once.
		base := allocated(func() {
			if _, err := jsontext.NewDecoder(bytes.NewBuffer(v)).ReadValue(); err != nil {
				t.Fatal(err)
			}
		})
		ours := allocated(func() { tt.f(v) })
		extra := (float64(ours) - float64(base)) / float64(len(v)) // jsontext's part may be pooled
		t.Logf("%s: %d bytes in; jsontext allocates %.1f bytes per byte, and this package %.1f more", tt.name, len(v), float64(base)/float64(len(v)), extra)
		if extra > 16 {
			t.Errorf("%s: %.1f bytes allocated per input byte beyond jsontext's", tt.name, extra)
		}
	}
	if _, err := Parse(jsontext.Value(strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat(`}`, 10001))); err == nil {
		t.Error("Parse accepted nesting deeper than 10000")
	}
}

// allocated returns the bytes allocated by a call of f (an average).
func allocated(f func()) uint64 {
	const runs = 4
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

func base36(i int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	s := ""
	for {
		s = string(digits[i%36]) + s
		if i /= 36; i == 0 {
			return s
		}
	}
}
