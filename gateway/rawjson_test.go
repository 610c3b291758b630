package gateway

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
)

func TestRawHelpers(t *testing.T) {
	obj := jsontext.Value(`{"name":"a","n":1,"x":{"y":2},"s":null}`)
	if got := stringOf(obj, "name"); got != "a" {
		t.Errorf("stringOf name = %q", got)
	}
	for _, name := range []string{"n", "x", "s", "missing"} {
		if got := stringOf(obj, name); got != "" {
			t.Errorf("stringOf %s = %q, want empty", name, got)
		}
	}
	if got := string(valueOf(obj, "x")); got != `{"y":2}` {
		t.Errorf("valueOf x = %s", got)
	}
	if valueOf(jsontext.Value(`[1]`), "x") != nil || valueOf(jsontext.Value(`{"a":1,"a":2}`), "a") != nil {
		t.Error("valueOf of a non-object or an object with duplicate names must be nil")
	}
	out, err := withString(obj, "name", "b\u202e")
	if err != nil || stringOf(out, "name") != "b\u202e" || string(valueOf(out, "x")) != `{"y":2}` {
		t.Errorf("withString: %s %v", out, err)
	}
	out, err = withValue(nil, "tasks", jsontext.Value(`[]`))
	if err != nil || string(out) != `{"tasks":[]}` {
		t.Errorf("withValue on nil: %s %v", out, err)
	}
	if _, err := withValue(jsontext.Value(`[1]`), "a", jsontext.Value(`1`)); err == nil {
		t.Error("withValue on an array must fail")
	}
	rel := jsontext.Value(`{"_meta":{"` + mcp.MetaKeyRelatedTask + `":{"taskId":"up-1"},"k":1},"content":[]}`)
	out, err = withRelatedTask(rel, "gw-1")
	if err != nil || string(out) != `{"_meta":{"`+mcp.MetaKeyRelatedTask+`":{"taskId":"gw-1"},"k":1},"content":[]}` {
		t.Errorf("withRelatedTask: %s %v", out, err)
	}
	plain := jsontext.Value(`{"content":[]}`)
	if out, err := withRelatedTask(plain, "gw-1"); err != nil || string(out) != string(plain) {
		t.Errorf("withRelatedTask without related task: %s %v", out, err)
	}
}

// FuzzRawHelpers: the helpers that read and edit what upstreams send never
// panic, and an edit yields valid JSON whose member reads back.
func FuzzRawHelpers(f *testing.F) {
	f.Add([]byte(`{"name":"a","_meta":{"io.modelcontextprotocol/related-task":{"taskId":"x"}}}`), "name", "b")
	f.Add([]byte(`{"a":{"b":[1,2,{"c":null}]}}`), "a", "")
	f.Add([]byte(`[]`), "x", "y")
	f.Fuzz(func(t *testing.T, raw []byte, name, s string) {
		v := jsontext.Value(raw)
		_ = valueOf(v, name)
		_ = stringOf(v, name)
		if out, err := withString(v, name, s); err == nil {
			if !jsontext.Value(out).IsValid() {
				t.Fatalf("withString produced invalid JSON %q", out)
			}
			if got := stringOf(out, name); got != s {
				t.Fatalf("withString(%q, %q, %q) reads back %q", raw, name, s, got)
			}
		}
		if out, err := withRelatedTask(v, s); err == nil && string(out) != string(raw) && !jsontext.Value(out).IsValid() {
			t.Fatalf("withRelatedTask produced invalid JSON %q", out)
		}
	})
}
