package jsonraw

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The benchmarks compare one Parse, edits and one Bytes with the same
// work done the way gateway/rawjson.go does it: a fresh scan of the whole
// input per read and per write (rescanMember and rescanSet below are
// minimal versions of its member and setMembers).

var benchParams = jsontext.Value(`{"name":"github__search_issues","arguments":{"query":"is:open label:bug","repo":"mcpgate/mcpgate","limit":50,"fields":["title","url","labels"]},"_meta":{"progressToken":"client-17"}}`)

const relatedTask = "io.modelcontextprotocol/related-task"

var benchNotification = jsontext.Value(`{"progress":50,"total":100,"message":"indexing","_meta":{"` + relatedTask + `":{"taskId":"upstream-task-0042"},"trace":"abc"}}`)

// BenchmarkToolCall reads a tools/call request's name and arguments and
// renames the tool.
func BenchmarkToolCall(b *testing.B) {
	b.Run("Object", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o, err := Parse(benchParams)
			if err != nil {
				b.Fatal(err)
			}
			if name, _, err := o.String("name"); err != nil || name == "" {
				b.Fatal(name, err)
			}
			if _, ok := o.Get("arguments"); !ok {
				b.Fatal("no arguments")
			}
			if err := o.SetString("name", "search_issues"); err != nil {
				b.Fatal(err)
			}
			_ = o.Bytes()
		}
	})
	b.Run("Rescan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := rescanMember(benchParams, "name")
			if err != nil || v == nil {
				b.Fatal(err)
			}
			if _, err := jsontext.AppendUnquote(nil, v); err != nil {
				b.Fatal(err)
			}
			if v, err := rescanMember(benchParams, "arguments"); err != nil || v == nil {
				b.Fatal(err)
			}
			q, _ := jsontext.AppendQuote(nil, "search_issues")
			if _, err := rescanSet(benchParams, "name", q); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRelatedTask maps the task id in a notification's
// _meta["io.modelcontextprotocol/related-task"].
func BenchmarkRelatedTask(b *testing.B) {
	b.Run("GetPath+SetPath", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := GetPath(benchNotification, "_meta", relatedTask, "taskId"); err != nil || !ok {
				b.Fatal(err)
			}
			if _, err := SetPath(benchNotification, jsontext.Value(`"gw-7"`), "_meta", relatedTask, "taskId"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Rescan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			meta, _ := rescanMember(benchNotification, "_meta")
			rel, _ := rescanMember(meta, relatedTask)
			if id, _ := rescanMember(rel, "taskId"); id == nil {
				b.Fatal("no taskId")
			}
			rel, _ = rescanSet(rel, "taskId", jsontext.Value(`"gw-7"`))
			meta, _ = rescanSet(meta, relatedTask, rel)
			if _, err := rescanSet(benchNotification, "_meta", meta); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchParams); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkElements(b *testing.B) {
	arr := JoinArray([]jsontext.Value{benchParams, benchNotification, benchParams, benchNotification})
	b.ReportAllocs()
	for b.Loop() {
		els, err := Elements(arr)
		if err != nil || len(els) != 4 {
			b.Fatal(err)
		}
		_ = JoinArray(els[1:3])
	}
}

// rescanMember returns a copy of the raw value of obj's member name, or
// nil, scanning obj from the start.
func rescanMember(obj jsontext.Value, name string) (jsontext.Value, error) {
	d := jsontext.NewDecoder(bytes.NewReader(obj))
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	for d.PeekKind() != '}' {
		n, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		if n.String() == name {
			v, err := d.ReadValue()
			return bytes.Clone(v), err
		}
		if err := d.SkipValue(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// rescanSet returns obj with member name set to v, re-encoding every
// member.
func rescanSet(obj jsontext.Value, name string, v jsontext.Value) (jsontext.Value, error) {
	d := jsontext.NewDecoder(bytes.NewReader(obj))
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, len(obj)+32), '{')
	done := false
	for d.PeekKind() != '}' {
		raw, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		q := bytes.Clone(raw)
		val, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		unq, err := jsontext.AppendUnquote(nil, q)
		if err != nil {
			return nil, err
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(out, q...), ':')
		if string(unq) == name {
			out, done = append(out, v...), true
		} else {
			out = append(out, val...)
		}
	}
	if !done {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out, _ = jsontext.AppendQuote(out, name)
		out = append(append(out, ':'), v...)
	}
	return append(out, '}'), nil
}
