package gateway

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestSetMembers(t *testing.T) {
	tests := []struct {
		in   string
		kv   []any
		want string
	}{
		{`{"name":"a","arguments":{"x":1}}`, []any{"name", "b"}, `{"name":"b","arguments":{"x":1}}`},
		{`{"arguments":{"x":1}}`, []any{"name", "b"}, `{"arguments":{"x":1},"name":"b"}`},
		{``, []any{"name", "b"}, `{"name":"b"}`},
		{`{"a":1,"_meta":{"progressToken":"t"},"z":[1]}`, []any{"_meta", jsontext.Value(`{"progressToken":"g1"}`)}, `{"a":1,"_meta":{"progressToken":"g1"},"z":[1]}`},
		{`{"a":1,"b":2}`, []any{"a", nil}, `{"b":2}`},
		{`{"\u006eame":"a"}`, []any{"name", "b"}, `{"\u006eame":"b"}`},
	}
	for _, tt := range tests {
		got, err := setMembers(jsontext.Value(tt.in), tt.kv...)
		if err != nil {
			t.Errorf("setMembers(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("setMembers(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if !jsontext.Value(got).IsValid() {
			t.Errorf("invalid JSON %s", got)
		}
	}
	if _, err := setMembers(jsontext.Value(`[1]`), "a", "b"); err == nil {
		t.Error("array accepted as object")
	}
}

func TestMember(t *testing.T) {
	obj := jsontext.Value(`{"name":"x\"y","n":{"deep":[1,2]}}`)
	if s, err := stringMember(obj, "name"); err != nil || s != `x"y` {
		t.Errorf("name = %q, %v", s, err)
	}
	if v, _ := member(obj, "n"); string(v) != `{"deep":[1,2]}` {
		t.Errorf("n = %s", v)
	}
	if v, _ := member(obj, "missing"); v != nil {
		t.Errorf("missing = %s", v)
	}
	els, err := arrayElements(jsontext.Value(`[{"a":1}, "s", 3]`))
	if err != nil || len(els) != 3 || string(joinArray(els)) != `[{"a":1},"s",3]` {
		t.Errorf("arrayElements = %q, %v", els, err)
	}
}
