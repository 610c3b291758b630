package gateway

import (
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/mcp"
)

// The gateway relays params and results as raw JSON, editing only the
// members it must (a tool's name, a progress token, a task id), so that
// fields it does not know pass through unchanged. Client params are
// decoded once by the admission stage (call.p); these typed helpers, on
// top of the fuzzed [jsonraw] package, read and edit single members of
// what upstreams send back.

// valueOf returns the raw value of an object's member, or nil when it is
// absent or obj is not a valid object.
func valueOf(obj jsontext.Value, name string) jsontext.Value {
	v, _, err := jsonraw.GetPath(obj, name)
	if err != nil {
		return nil
	}
	return v
}

// stringOf returns the string value of an object's member ("" when it is
// absent or not a string).
func stringOf(obj jsontext.Value, name string) string {
	v := valueOf(obj, name)
	if v.Kind() != '"' {
		return ""
	}
	s, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return ""
	}
	return string(s)
}

// withValue returns obj with member name set to v (replaced in place, or
// appended).
func withValue(obj jsontext.Value, name string, v jsontext.Value) (jsontext.Value, error) {
	return jsonraw.SetPath(obj, v, name)
}

// withString returns obj with member name set to the string s.
func withString(obj jsontext.Value, name, s string) (jsontext.Value, error) {
	q, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		return nil, err
	}
	return jsonraw.SetPath(obj, q, name)
}

// withRelatedTask returns params with the task id in its related-task
// _meta set to gid; params without one are returned as they are.
func withRelatedTask(params jsontext.Value, gid string) (jsontext.Value, error) {
	if v, ok, err := jsonraw.GetPath(params, "_meta", mcp.MetaKeyRelatedTask, "taskId"); err != nil || !ok || v == nil {
		return params, err
	}
	q, err := jsontext.AppendQuote(nil, gid)
	if err != nil {
		return nil, err
	}
	return jsonraw.SetPath(params, q, "_meta", mcp.MetaKeyRelatedTask, "taskId")
}
