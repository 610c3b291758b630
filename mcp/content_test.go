// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/internal/schematest"
)

func TestContentDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"unknown type", `{"content":[{"type":"video","data":"AA=="}]}`, `unknown content type "video"`},
		{"missing type", `{"content":[{"text":"hi"}]}`, `no "type"`},
		{"type not string", `{"content":[{"type":1,"text":"hi"}]}`, `"type" must be a string`},
		{"missing text", `{"content":[{"type":"text"}]}`, `missing "text"`},
		{"missing mimeType", `{"content":[{"type":"image","data":"AA=="}]}`, `missing "mimeType"`},
		{"missing resource", `{"content":[{"type":"resource"}]}`, `missing "resource"`},
		{"missing link name", `{"content":[{"type":"resource_link","uri":"file:///a"}]}`, `missing "name"`},
		{"tool_use outside sampling", `{"content":[{"type":"tool_use","id":"1","name":"x","input":{}}]}`, `only allowed in sampling`},
		{"block not object", `{"content":["hi"]}`, `content block must be a JSON object`},
		{"content not array", `{"content":{"type":"text","text":"x"}}`, `must be an array`},
		{"text not string", `{"content":[{"type":"text","text":5}]}`, `"text" must be a string`},
		{"bad base64", `{"content":[{"type":"image","data":"%%%","mimeType":"image/png"}]}`, `base64`},
		{"duplicate key", `{"content":[{"type":"text","text":"a","text":"b"}]}`, `duplicate`},
		{"duplicate type", `{"content":[{"type":"text","type":"image","text":"a"}]}`, `duplicate`},
		{"structuredContent not object", `{"content":[],"structuredContent":[1]}`, `must be an object`},
		{"isError not bool", `{"content":[],"isError":"yes"}`, `"isError" must be a boolean`},
		{"resource text and blob", `{"content":[{"type":"resource","resource":{"uri":"file:///a","text":"x","blob":"AA=="}}]}`, `both "text" and "blob"`},
		{"resource neither", `{"content":[{"type":"resource","resource":{"uri":"file:///a"}}]}`, `neither "text" nor "blob"`},
		{"resource no uri", `{"content":[{"type":"resource","resource":{"text":"x"}}]}`, `missing "uri"`},
		{"truncated", `{"content":[{"type":"text","text":"a"}`, `EOF`},
		{"invalid utf8", "{\"content\":[{\"type\":\"text\",\"text\":\"\xff\"}]}", `UTF-8`},
		{"not object", `[]`, `must be a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r CallToolResult
			err := json.Unmarshal([]byte(tt.in), &r)
			if err == nil {
				t.Fatalf("Unmarshal(%s) succeeded: %+v", tt.in, r)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Unmarshal(%s) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestContentDecodeLenient(t *testing.T) {
	// Unknown members are ignored, members may come in any order, escaped
	// member names are understood, and null content is accepted.
	in := `{"isError":false,"content":[{"text":"hi","extra":{"a":[1]},"t\u0079pe":"text"}],"x-vendor":1}`
	var r CallToolResult
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	want := CallToolResult{Content: []Content{&TextContent{Text: "hi"}}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %#v, want %#v", r, want)
	}
	if err := json.Unmarshal([]byte(`{"content":null}`), &r); err != nil || r.Content != nil {
		t.Errorf("null content: err=%v content=%v", err, r.Content)
	}
	// Encoding always writes content as an array.
	b, err := json.Marshal(CallToolResult{})
	if err != nil || string(b) != `{"content":[]}` {
		t.Errorf("Marshal(CallToolResult{}) = %s, %v", b, err)
	}
}

func TestContentEncodeErrors(t *testing.T) {
	if _, err := json.Marshal(&CallToolResult{Content: []Content{nil}}); err == nil {
		t.Error("nil content block encoded without error")
	}
	if _, err := json.Marshal(&CallToolResult{Content: []Content{(*TextContent)(nil)}}); err == nil {
		t.Error("typed nil content block encoded without error")
	}
	if _, err := json.Marshal(&EmbeddedResource{}); err == nil {
		t.Error("EmbeddedResource without Resource encoded without error")
	}
	if _, err := json.Marshal(&ResourceContents{URI: "file:///a", Text: "t", Blob: []byte{1}}); err == nil {
		t.Error("ResourceContents with Text and Blob encoded without error")
	}
}

func TestConcreteContentUnmarshal(t *testing.T) {
	var tc TextContent
	if err := json.Unmarshal([]byte(`{"type":"text","text":"x"}`), &tc); err != nil || tc.Text != "x" {
		t.Errorf("TextContent: %v %+v", err, tc)
	}
	err := json.Unmarshal([]byte(`{"type":"image","data":"AA==","mimeType":"image/png"}`), &tc)
	if err == nil || !strings.Contains(err.Error(), `want "text"`) {
		t.Errorf("decoding an image into TextContent: err = %v", err)
	}
	var tu ToolUseContent
	if err := json.Unmarshal([]byte(`{"type":"tool_use","id":"1","name":"n","input":{"a":1}}`), &tu); err != nil || string(tu.Input) != `{"a":1}` {
		t.Errorf("ToolUseContent: %v %+v", err, tu)
	}
	// A value (not pointer) still encodes with its discriminator.
	b, err := json.Marshal(TextContent{Text: "v"})
	if err != nil || string(b) != `{"type":"text","text":"v"}` {
		t.Errorf("Marshal(TextContent{}) = %s, %v", b, err)
	}
	// Required members have defaults when empty.
	b, err = json.Marshal(&ToolUseContent{ID: "1", Name: "n"})
	if err != nil || string(b) != `{"type":"tool_use","id":"1","name":"n","input":{}}` {
		t.Errorf("Marshal(ToolUseContent without Input) = %s, %v", b, err)
	}
	schematest.Validate(t, "ToolUseContent", b)
	b, err = json.Marshal(&Tool{Name: "t"})
	if err != nil || string(b) != `{"name":"t","inputSchema":{"type":"object"}}` {
		t.Errorf("Marshal(Tool without InputSchema) = %s, %v", b, err)
	}
	schematest.Validate(t, "Tool", b)
	b, err = json.Marshal(&LoggingMessageParams{Level: LoggingLevelInfo})
	if err != nil || string(b) != `{"level":"info","data":null}` {
		t.Errorf("Marshal(LoggingMessageParams without Data) = %s, %v", b, err)
	}
	schematest.Validate(t, "LoggingMessageNotificationParams", b)
}

func TestSamplingMessageSingleAndArray(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Content
		wantOut string // encoding of the decoded value
	}{
		{"single", `{"role":"user","content":{"type":"text","text":"hi"}}`,
			[]Content{&TextContent{Text: "hi"}}, `{"role":"user","content":{"type":"text","text":"hi"}}`},
		{"array of one", `{"role":"user","content":[{"type":"text","text":"hi"}]}`,
			[]Content{&TextContent{Text: "hi"}}, `{"role":"user","content":{"type":"text","text":"hi"}}`},
		{"array", `{"role":"assistant","content":[{"type":"text","text":"calling"},{"type":"tool_use","id":"u1","name":"f","input":{"x":1}}]}`,
			[]Content{&TextContent{Text: "calling"}, &ToolUseContent{ID: "u1", Name: "f", Input: jsontext.Value(`{"x":1}`)}},
			`{"role":"assistant","content":[{"type":"text","text":"calling"},{"type":"tool_use","id":"u1","name":"f","input":{"x":1}}]}`},
		{"empty array", `{"role":"user","content":[]}`, []Content{}, `{"role":"user","content":[]}`},
		{"tool result", `{"role":"user","content":{"type":"tool_result","toolUseId":"u1","content":[{"type":"text","text":"ok"}]}}`,
			[]Content{&ToolResultContent{ToolUseID: "u1", Content: []Content{&TextContent{Text: "ok"}}}},
			`{"role":"user","content":{"type":"tool_result","toolUseId":"u1","content":[{"type":"text","text":"ok"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schematest.Validate(t, "SamplingMessage", []byte(tt.in))
			var m SamplingMessage
			if err := json.Unmarshal([]byte(tt.in), &m); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Content, tt.want) {
				t.Errorf("Content = %#v, want %#v", m.Content, tt.want)
			}
			out, err := json.Marshal(&m)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.wantOut {
				t.Errorf("encoded %s, want %s", out, tt.wantOut)
			}
			schematest.Validate(t, "SamplingMessage", out)

			// The same content rules apply to CreateMessageResult.
			res := `{"model":"m",` + tt.in[1:]
			schematest.Validate(t, "CreateMessageResult", []byte(res))
			var r CreateMessageResult
			if err := json.Unmarshal([]byte(res), &r); err != nil {
				t.Fatalf("CreateMessageResult %s: %v", res, err)
			}
			if !reflect.DeepEqual(r.Content, tt.want) {
				t.Errorf("CreateMessageResult.Content = %#v, want %#v", r.Content, tt.want)
			}
		})
	}
	var m SamplingMessage
	if err := json.Unmarshal([]byte(`{"role":"user"}`), &m); err == nil {
		t.Error("sampling message without content accepted")
	}
	// resource_link and resource are not SamplingMessageContentBlocks in the
	// schema; decoding accepts them (peers send them) but the schema check
	// that tests run on encoded messages catches them.
	if err := json.Unmarshal([]byte(`{"role":"user","content":{"type":"resource_link","uri":"file:///a","name":"a"}}`), &m); err != nil {
		t.Errorf("resource_link in a sampling message: %v", err)
	}
	if schematest.Check("SamplingMessage", []byte(`{"role":"user","content":{"type":"resource_link","uri":"file:///a","name":"a"}}`)) == nil {
		t.Error("schema unexpectedly allows resource_link in SamplingMessage")
	}
}

// elicitationSchemaJSON uses every primitive schema variant and default.
const elicitationSchemaJSON = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "name": {"type": "string", "title": "Name", "description": "Your name", "minLength": 1, "maxLength": 50, "default": "Ada"},
    "email": {"type": "string", "format": "email"},
    "birthday": {"type": "string", "format": "date", "default": "1815-12-10"},
    "age": {"type": "integer", "minimum": 0, "maximum": 150, "default": 36},
    "ratio": {"type": "number", "minimum": 0.5, "maximum": 1e2, "default": 2.50},
    "subscribe": {"type": "boolean", "title": "Subscribe", "default": false},
    "color": {"type": "string", "enum": ["red", "green", "blue"], "default": "green"},
    "size": {"type": "string", "title": "Size", "oneOf": [{"const": "s", "title": "Small"}, {"const": "m", "title": "Medium"}], "default": "m"},
    "plan": {"type": "string", "enum": ["free", "pro"], "enumNames": ["Free", "Pro"], "default": "pro"},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 1, "maxItems": 2, "default": ["a"]},
    "langs": {"type": "array", "title": "Languages", "items": {"anyOf": [{"const": "go", "title": "Go"}, {"const": "rs", "title": "Rust"}]}, "default": ["go", "rs"]}
  },
  "required": ["name", "email"]
}`

func TestElicitationSchemaRoundTrip(t *testing.T) {
	params := `{"mode":"form","message":"Tell us","requestedSchema":` + elicitationSchemaJSON + `}`
	schematest.Validate(t, "ElicitRequestFormParams", []byte(params))
	var p ElicitParams
	if err := json.Unmarshal([]byte(params), &p); err != nil {
		t.Fatal(err)
	}
	if p.EffectiveMode() != ElicitationModeForm || p.RequestedSchema == nil || len(p.RequestedSchema.Properties) != 11 {
		t.Fatalf("decoded %+v", p)
	}
	if got := p.RequestedSchema.Properties["size"].OneOf; len(got) != 2 || got[1] != (EnumOption{Const: "m", Title: "Medium"}) {
		t.Errorf("oneOf = %+v", got)
	}
	if got := p.RequestedSchema.Properties["langs"].Items; got == nil || len(got.AnyOf) != 2 {
		t.Errorf("langs items = %+v", got)
	}
	if got := string(p.RequestedSchema.Properties["ratio"].Default); got != "2.50" {
		t.Errorf("ratio default = %s", got)
	}
	out, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, "ElicitRequestFormParams", out)
	schematest.Validate(t, "ElicitRequestParams", out)
	// Semantically identical to the input (object member order within
	// properties may differ since it is a Go map; numbers keep their form).
	if !jsonEqual(t, []byte(params), out) {
		t.Errorf("round trip changed the schema:\n in %s\nout %s", params, out)
	}
	// Defaults are raw JSON: their literal form is kept.
	if !bytes.Contains(out, []byte(`"default":2.50`)) {
		t.Errorf("default literal 2.50 not preserved: %s", out)
	}
}

// jsonEqual reports whether a and b are the same JSON value (ignoring member
// order and whitespace).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestInputSchemaPreserved(t *testing.T) {
	schema := `{"type":"object","$schema":"https://json-schema.org/draft/2020-12/schema","$id":"urn:x","$anchor":"top",` +
		`"$defs":{"n":{"type":"number","multipleOf":0.10,"maximum":1E+3}},"properties":{"a":{"$ref":"#/$defs/n"},"b":{"type":["string","null"],"pattern":"^\\d+$"}},` +
		`"if":{"required":["a"]},"then":{"required":["b"]},"else":{"not":{}},"additionalProperties":false,"unevaluatedProperties":false,"x-vendor":[1,2.50,-0]}`
	doc := `{"name":"t","inputSchema":` + schema + `,"outputSchema":` + schema + `}`
	var tool Tool
	if err := json.Unmarshal([]byte(doc), &tool); err != nil {
		t.Fatal(err)
	}
	if string(tool.InputSchema) != schema || string(tool.OutputSchema) != schema {
		t.Errorf("decoded schema differs:\n got %s\nwant %s", tool.InputSchema, schema)
	}
	out, err := json.Marshal(&tool)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != doc {
		t.Errorf("re-encoded tool differs:\n got %s\nwant %s", out, doc)
	}
	schematest.Validate(t, "Tool", out)

	// Insignificant whitespace is normalized on encoding; the decoded value
	// itself is byte for byte what was received.
	spaced := `{ "type" : "object",` + "\n" + `  "properties": {} }`
	if err := json.Unmarshal([]byte(`{"name":"t","inputSchema":`+spaced+`}`), &tool); err != nil {
		t.Fatal(err)
	}
	if string(tool.InputSchema) != spaced {
		t.Errorf("decoded %q, want %q", tool.InputSchema, spaced)
	}
	// The same holds for arguments and structured content.
	args := `{"q":"caf\u00e9","n":1.50,"deep":{"z":1,"a":2}}`
	var p CallToolParams
	if err := json.Unmarshal([]byte(`{"name":"x","arguments":`+args+`}`), &p); err != nil {
		t.Fatal(err)
	}
	if string(p.Arguments) != args {
		t.Errorf("arguments = %s, want %s", p.Arguments, args)
	}
	res := `{"content":[],"structuredContent":{"b":1,"a":[true,null]}}`
	var r CallToolResult
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(&r); string(out) != res {
		t.Errorf("structuredContent round trip: got %s, want %s", out, res)
	}
}

func TestLoggingLevelOrdering(t *testing.T) {
	for i, l := range allLevels {
		if l.Severity() != i {
			t.Errorf("%s.Severity() = %d, want %d", l, l.Severity(), i)
		}
		if !l.IsValid() {
			t.Errorf("%s.IsValid() = false", l)
		}
		for j, m := range allLevels {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := l.Compare(m); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", l, m, got, want)
			}
			if got := l.Enabled(m); got != (i >= j) {
				t.Errorf("%s.Enabled(%s) = %v, want %v", l, m, got, i >= j)
			}
		}
	}
	bogus := LoggingLevel("verbose")
	if bogus.IsValid() || bogus.Severity() != -1 || bogus.Enabled(LoggingLevelDebug) {
		t.Error("unknown level treated as valid")
	}
	if bogus.Compare(LoggingLevelDebug) != -1 {
		t.Error("unknown level does not sort below debug")
	}
}

func TestMeta(t *testing.T) {
	var m Meta
	if m.ProgressToken() != nil {
		t.Error("nil Meta has a progress token")
	}
	m.SetProgressToken("abc")
	if m.ProgressToken() != "abc" {
		t.Errorf("ProgressToken() = %v", m.ProgressToken())
	}
	m.SetProgressToken(7)
	if m.ProgressToken() != int64(7) {
		t.Errorf("ProgressToken() = %#v, want int64(7)", m.ProgressToken())
	}
	m.SetProgressToken(nil)
	if _, ok := m["progressToken"]; ok {
		t.Error("SetProgressToken(nil) left the token")
	}
	// Decoded tokens: integers come back as int64.
	var p CallToolParams
	if err := json.Unmarshal([]byte(`{"name":"x","_meta":{"progressToken":42}}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Meta.ProgressToken() != int64(42) {
		t.Errorf("decoded token = %#v, want int64(42)", p.Meta.ProgressToken())
	}
	p = CallToolParams{} // json v2 merges into existing maps
	if err := json.Unmarshal([]byte(`{"name":"x","_meta":{"progressToken":"t"}}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Meta.ProgressToken() != "t" {
		t.Errorf("decoded token = %#v", p.Meta.ProgressToken())
	}

	var r Meta
	if _, ok := r.RelatedTask(); ok {
		t.Error("empty Meta has a related task")
	}
	r.SetRelatedTask("task-9")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"io.modelcontextprotocol/related-task":{"taskId":"task-9"}}` {
		t.Errorf("related task encoded as %s", b)
	}
	var back Meta
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if id, ok := back.RelatedTask(); !ok || id != "task-9" {
		t.Errorf("RelatedTask() = %q, %v", id, ok)
	}
	if id, ok := (Meta{MetaKeyRelatedTask: RelatedTaskMetadata{TaskID: "x"}}).RelatedTask(); !ok || id != "x" {
		t.Errorf("RelatedTask() with struct value = %q, %v", id, ok)
	}
}

func TestProgressToken(t *testing.T) {
	tests := []struct {
		in      string
		want    any
		wantErr string
	}{
		{`{"progressToken":"a","progress":1}`, "a", ""},
		{`{"progressToken":12,"progress":1}`, int64(12), ""},
		{`{"progressToken":-3,"progress":1}`, int64(-3), ""},
		{`{"progressToken":1.5,"progress":1}`, nil, "not an integer"},
		{`{"progressToken":true,"progress":1}`, nil, "string or an integer"},
		{`{"progressToken":null,"progress":1}`, nil, "string or an integer"},
		{`{"progress":1}`, nil, "missing"},
	}
	for _, tt := range tests {
		var p ProgressNotificationParams
		err := json.Unmarshal([]byte(tt.in), &p)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || p.ProgressToken != tt.want || p.Progress != 1 {
			t.Errorf("Unmarshal(%s) = %#v, %v", tt.in, p, err)
		}
	}
}

func TestCompleteReferenceErrors(t *testing.T) {
	for _, in := range []string{
		`{"type":"ref/tool","name":"x"}`,
		`{"type":"ref/prompt"}`,
		`{"type":"ref/resource"}`,
		`{"name":"x"}`,
	} {
		var r CompleteReference
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %+v", in, r)
		}
	}
}

func TestTaskTTLNull(t *testing.T) {
	b, err := json.Marshal(&Task{TaskID: "t", Status: TaskStatusWorking, CreatedAt: "a", LastUpdatedAt: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"ttl":null`)) {
		t.Errorf("unlimited TTL must be encoded as null: %s", b)
	}
	var r GetTaskResult
	if err := json.Unmarshal([]byte(`{"taskId":"t","status":"completed","createdAt":"a","lastUpdatedAt":"b","ttl":5,"_meta":{"k":"v"}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.TaskID != "t" || r.TTL == nil || *r.TTL != 5 || r.Meta["k"] != "v" || !r.Status.IsTerminal() {
		t.Errorf("GetTaskResult = %+v", r)
	}
	if TaskStatusWorking.IsTerminal() || TaskStatusInputRequired.IsTerminal() {
		t.Error("non-terminal status reported terminal")
	}
}

func TestGetTaskPayloadResult(t *testing.T) {
	in := `{"content":[{"type":"text","text":"done"}],"structuredContent":{"x":1},"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t1"}}}`
	var r GetTaskPayloadResult
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if id, ok := r.Meta.RelatedTask(); !ok || id != "t1" {
		t.Errorf("RelatedTask = %q %v", id, ok)
	}
	var ctr CallToolResult
	if err := json.Unmarshal(r.Payload, &ctr); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	if len(ctr.Content) != 1 || string(ctr.StructuredContent) != `{"x":1}` {
		t.Errorf("payload decoded to %+v", ctr)
	}
	out, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, []byte(in), out) {
		t.Errorf("round trip: %s", out)
	}
	schematest.Validate(t, "CallToolResult", out)
}

func TestElicitResultContent(t *testing.T) {
	in := `{"action":"accept","content":{"name":"Ada","age":36,"ok":true,"tags":["a","b"]}}`
	var r ElicitResult
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Action != ElicitActionAccept || r.Content["age"] != 36.0 || r.Content["ok"] != true {
		t.Errorf("decoded %+v", r)
	}
	out, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, "ElicitResult", out)
	if !jsonEqual(t, []byte(in), out) {
		t.Errorf("round trip: %s", out)
	}
}

// toolsCallResult is a typical tools/call result.
const toolsCallResult = `{"content":[{"type":"text","text":"The weather in Paris is 18°C and sunny, with light winds from the west."},` +
	`{"type":"resource_link","uri":"file:///forecast.json","name":"forecast","mimeType":"application/json"}],` +
	`"structuredContent":{"city":"Paris","temp":18,"conditions":"sunny"},"isError":false}`

func BenchmarkCallToolResultDecode(b *testing.B) {
	data := []byte(toolsCallResult)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var r CallToolResult
		if err := json.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallToolResultEncode(b *testing.B) {
	var r CallToolResult
	if err := json.Unmarshal([]byte(toolsCallResult), &r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(&r); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCallToolResult checks that decoding never panics and that whatever
// decodes re-encodes to a document that decodes to the same value.
func FuzzCallToolResult(f *testing.F) {
	f.Add([]byte(toolsCallResult))
	f.Add([]byte(`{"content":[{"type":"image","data":"AAEC","mimeType":"image/png","annotations":{"priority":0.5}}],"_meta":{"a":1}}`))
	f.Add([]byte(`{"content":[{"type":"resource","resource":{"uri":"file:///a","blob":"AA=="}}]}`))
	f.Add([]byte(`{"content":[{"type":"audio","data":"","mimeType":"audio/wav"}],"isError":true}`))
	f.Add([]byte(`{"content":[{"type":"video"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r CallToolResult
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		out, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", data, err)
		}
		var r2 CallToolResult
		if err := json.Unmarshal(out, &r2); err != nil {
			t.Fatalf("decoding re-encoded %s: %v", out, err)
		}
		out2, err := json.Marshal(&r2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("unstable encoding:\n%s\n%s (%v)", out, out2, err)
		}
	})
}

// FuzzSamplingMessage checks the single-or-array content decoder.
func FuzzSamplingMessage(f *testing.F) {
	f.Add([]byte(`{"role":"user","content":{"type":"text","text":"hi"}}`))
	f.Add([]byte(`{"role":"assistant","content":[{"type":"tool_use","id":"1","name":"f","input":{}},{"type":"tool_result","toolUseId":"1","content":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m SamplingMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		out, err := json.Marshal(&m)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", data, err)
		}
		var m2 SamplingMessage
		if err := json.Unmarshal(out, &m2); err != nil {
			t.Fatalf("decoding re-encoded %s: %v", out, err)
		}
	})
}

// metaCarrier is what GetMeta and SetMeta provide.
type metaCarrier interface {
	GetMeta() Meta
	SetMeta(Meta)
}

func TestMetaAccessors(t *testing.T) {
	for _, c := range schemaCases() {
		mc, ok := c.v.(metaCarrier)
		if !ok {
			continue
		}
		// Work on a copy so that the shared examples stay unchanged.
		cp := reflect.New(reflect.TypeOf(c.v).Elem())
		cp.Elem().Set(reflect.ValueOf(c.v).Elem())
		mc = cp.Interface().(metaCarrier)
		m := Meta{"k": c.name}
		mc.SetMeta(m)
		if got := mc.GetMeta(); got["k"] != c.name {
			t.Errorf("%s: GetMeta after SetMeta = %v", c.name, got)
		}
		b, err := json.Marshal(mc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`"_meta":{"k":`)) {
			t.Errorf("%s: _meta not encoded: %s", c.name, b)
		}
	}
}

func TestContentTypeMatchesEncoding(t *testing.T) {
	for _, c := range []Content{exText, exImage, exAudio, exLink, exEmbedded, exToolUse, exToolRes} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatal(err)
		}
		if head.Type != c.ContentType() {
			t.Errorf("%T: ContentType() = %q, encoded type %q", c, c.ContentType(), head.Type)
		}
		// Every block decodes back, via the discriminator, to its own type.
		var m SamplingMessage
		if err := json.Unmarshal([]byte(`{"role":"user","content":`+string(b)+`}`), &m); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if reflect.TypeOf(m.Content[0]) != reflect.TypeOf(c) {
			t.Errorf("decoded %T, want %T", m.Content[0], c)
		}
	}
}
