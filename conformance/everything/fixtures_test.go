package everything

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
)

// logSink collects the log notifications a client receives.
type logSink struct {
	mu   sync.Mutex
	msgs []*mcp.LoggingMessageParams
}

func (l *logSink) add(_ context.Context, _ *mcp.ClientSession, p *mcp.LoggingMessageParams) {
	l.mu.Lock()
	l.msgs = append(l.msgs, p)
	l.mu.Unlock()
}

func (l *logSink) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// elicitCapture records the elicitation requests a client receives and
// answers them as the conformance harness does.
type elicitCapture struct {
	mu   sync.Mutex
	reqs []*mcp.ElicitParams
}

func (c *elicitCapture) handle(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req.Params)
	c.mu.Unlock()
	return &mcp.ElicitResult{Action: mcp.ElicitActionAccept, Content: map[string]any{"username": "testuser", "email": "test@example.com"}}, nil
}

func (c *elicitCapture) last(t *testing.T) *mcp.ElicitParams {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) == 0 {
		t.Fatal("no elicitation request was received")
	}
	return c.reqs[len(c.reqs)-1]
}

type testEnv struct {
	f      *Server
	cs     *mcp.ClientSession
	logs   *logSink
	elicit *elicitCapture
}

// newTestEnv connects a client to a fresh fixture server in memory. The
// client answers sampling and elicitation as the conformance harness does.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	f := NewServer(nil)
	te := &testEnv{f: f, logs: &logSink{}, elicit: &elicitCapture{}}
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := f.server.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "fixture-test", Version: "1.0.0"}, &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			if len(req.Params.Messages) != 1 || req.Params.MaxTokens != 100 {
				return nil, errors.New("unexpected sampling request")
			}
			return &mcp.CreateMessageResult{
				Role:       mcp.RoleAssistant,
				Content:    []mcp.Content{&mcp.TextContent{Text: "This is a test response from the client"}},
				Model:      "test-model",
				StopReason: mcp.StopReasonEndTurn,
			}, nil
		},
		ElicitationHandler:    te.elicit.handle,
		LoggingMessageHandler: te.logs.add,
	})
	cs, err := c.Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	te.cs = cs
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return te
}

func (te *testEnv) call(t *testing.T, name string, args string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := &mcp.CallToolParams{Name: name}
	if args != "" {
		p.Arguments = jsontext.Value(args)
	}
	res, err := te.cs.CallTool(ctx, p)
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func firstText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			return tc.Text
		}
	}
	t.Fatalf("result has no text content: %#v", res.Content)
	return ""
}

func TestToolsList(t *testing.T) {
	te := newTestEnv(t)
	res, err := te.cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.NextCursor != "" {
		t.Errorf("tools/list is paginated (next cursor %q); the suite reads only the first page", res.NextCursor)
	}
	want := []string{
		"json_schema_2020_12_tool", "test_audio_content", "test_elicitation", "test_elicitation_sep1034_defaults",
		"test_elicitation_sep1330_enums", "test_embedded_resource", "test_error_handling", "test_image_content",
		"test_multiple_content_types", "test_reconnection", "test_sampling", "test_simple_text",
		"test_tool_with_logging", "test_tool_with_progress",
	}
	got := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		got[tool.Name] = tool
		if tool.Description == "" {
			t.Errorf("tool %s has no description", tool.Name)
		}
		if len(tool.InputSchema) == 0 {
			t.Errorf("tool %s has no input schema", tool.Name)
		}
	}
	for _, name := range want {
		if got[name] == nil {
			t.Errorf("tool %s is missing", name)
		}
	}
	if tool := got["json_schema_2020_12_tool"]; tool != nil {
		if !bytes.Equal(tool.InputSchema, []byte(jsonSchema202012)) {
			t.Errorf("json_schema_2020_12_tool's schema changed on the way:\n got %s\nwant %s", tool.InputSchema, jsonSchema202012)
		}
	}
}

func TestContentTools(t *testing.T) {
	tests := []struct {
		tool  string
		check func(t *testing.T, res *mcp.CallToolResult)
	}{
		{"test_simple_text", func(t *testing.T, res *mcp.CallToolResult) {
			if got := firstText(t, res); got != SimpleText {
				t.Errorf("text = %q, want %q", got, SimpleText)
			}
		}},
		{"test_image_content", func(t *testing.T, res *mcp.CallToolResult) {
			img, ok := res.Content[0].(*mcp.ImageContent)
			if !ok || img.MIMEType != "image/png" {
				t.Fatalf("content = %#v, want one PNG image", res.Content)
			}
			if _, err := png.Decode(bytes.NewReader(img.Data)); err != nil {
				t.Errorf("image does not decode as PNG: %v", err)
			}
		}},
		{"test_audio_content", func(t *testing.T, res *mcp.CallToolResult) {
			a, ok := res.Content[0].(*mcp.AudioContent)
			if !ok || a.MIMEType != "audio/wav" {
				t.Fatalf("content = %#v, want audio/wav", res.Content)
			}
			if len(a.Data) < 44 || string(a.Data[:4]) != "RIFF" || string(a.Data[8:12]) != "WAVE" {
				t.Errorf("audio is not a WAV file")
			}
		}},
		{"test_embedded_resource", func(t *testing.T, res *mcp.CallToolResult) {
			er, ok := res.Content[0].(*mcp.EmbeddedResource)
			if !ok || er.Resource.URI != "test://embedded-resource" || er.Resource.MIMEType != "text/plain" || er.Resource.Text != embeddedText {
				t.Errorf("content = %#v, want the embedded text resource", res.Content)
			}
		}},
		{"test_multiple_content_types", func(t *testing.T, res *mcp.CallToolResult) {
			var types []string
			for _, c := range res.Content {
				types = append(types, c.ContentType())
			}
			if got := strings.Join(types, ","); got != "text,image,resource" {
				t.Errorf("content types = %s, want text,image,resource", got)
			}
			if er, ok := res.Content[2].(*mcp.EmbeddedResource); !ok || er.Resource.Text != mixedResourceJSON || er.Resource.MIMEType != "application/json" {
				t.Errorf("third block = %#v", res.Content[2])
			}
		}},
		{"test_error_handling", func(t *testing.T, res *mcp.CallToolResult) {
			if !res.IsError || firstText(t, res) != errorText {
				t.Errorf("result = %+v, want isError with %q", res, errorText)
			}
		}},
		{"test_reconnection", func(t *testing.T, res *mcp.CallToolResult) {
			if res.IsError || firstText(t, res) != ReconnectionText {
				t.Errorf("result = %+v", res)
			}
		}},
	}
	te := newTestEnv(t)
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			// No arguments member at all, as the suite sends for
			// test_simple_text.
			res := te.call(t, tt.tool, "")
			if len(res.Content) == 0 {
				t.Fatal("empty content")
			}
			tt.check(t, res)
		})
	}
}

func TestToolWithProgress(t *testing.T) {
	te := newTestEnv(t)
	var mu sync.Mutex
	var got []float64
	ctx := mcp.WithProgress(context.Background(), func(p *mcp.ProgressNotificationParams) {
		mu.Lock()
		got = append(got, p.Progress)
		mu.Unlock()
		if p.ProgressToken != "progress-test-1" || p.Total != 100 {
			t.Errorf("progress = %+v, want token progress-test-1 and total 100", p)
		}
	})
	p := &mcp.CallToolParams{Name: "test_tool_with_progress", Arguments: jsontext.Value(`{}`)}
	p.Meta.SetProgressToken("progress-test-1")
	if _, err := te.cs.CallTool(ctx, p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The notifications precede the result, so all three are in.
	if len(got) != 3 || got[0] != 0 || got[1] != 50 || got[2] != 100 {
		t.Errorf("progress = %v, want [0 50 100]", got)
	}
}

func TestToolWithLogging(t *testing.T) {
	tests := []struct {
		level mcp.LoggingLevel
		want  int
	}{
		{mcp.LoggingLevelDebug, 3},
		{mcp.LoggingLevelInfo, 3},
		{mcp.LoggingLevelWarning, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			te := newTestEnv(t)
			if err := te.cs.SetLoggingLevel(context.Background(), tt.level); err != nil {
				t.Fatal(err)
			}
			te.call(t, "test_tool_with_logging", "{}")
			if got := te.logs.count(); got != tt.want {
				t.Errorf("got %d log messages, want %d", got, tt.want)
			}
		})
	}
}

func TestSampling(t *testing.T) {
	te := newTestEnv(t)
	res := te.call(t, "test_sampling", `{"prompt":"Test prompt for sampling"}`)
	if got, want := firstText(t, res), "LLM response: This is a test response from the client"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	// A missing required argument is a tool error, not a protocol error.
	if res := te.call(t, "test_sampling", `{}`); !res.IsError {
		t.Errorf("test_sampling without prompt: isError = false")
	}
}

func TestElicitation(t *testing.T) {
	te := newTestEnv(t)
	res := te.call(t, "test_elicitation", `{"message":"Please provide your information"}`)
	want := `User response: action=accept, content={"email":"test@example.com","username":"testuser"}`
	if got := firstText(t, res); got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	p := te.elicit.last(t)
	if p.Message != "Please provide your information" || len(p.RequestedSchema.Required) != 2 {
		t.Errorf("elicitation params = %+v", p)
	}
}

// elicitedSchema returns the requestedSchema of the last elicitation as
// generic JSON, the way the harness inspects it.
func elicitedSchema(t *testing.T, te *testEnv) map[string]any {
	t.Helper()
	b, err := json.Marshal(te.elicit.last(t).RequestedSchema)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	props, _ := m["properties"].(map[string]any)
	return props
}

func TestElicitationSEP1034Defaults(t *testing.T) {
	te := newTestEnv(t)
	res := te.call(t, "test_elicitation_sep1034_defaults", `{}`)
	if got := firstText(t, res); !strings.HasPrefix(got, "Elicitation completed: action=accept, content=") {
		t.Errorf("text = %q", got)
	}
	props := elicitedSchema(t, te)
	tests := []struct {
		field, typ string
		def        any
	}{
		{"name", "string", "John Doe"},
		{"age", "integer", 30.0},
		{"score", "number", 95.5},
		{"status", "string", "active"},
		{"verified", "boolean", true},
	}
	for _, tt := range tests {
		p, _ := props[tt.field].(map[string]any)
		if p["type"] != tt.typ || p["default"] != tt.def {
			t.Errorf("%s = %v, want type %s default %v", tt.field, p, tt.typ, tt.def)
		}
	}
	if enum, _ := props["status"].(map[string]any)["enum"].([]any); len(enum) != 3 {
		t.Errorf("status enum = %v", enum)
	}
}

func TestElicitationSEP1330Enums(t *testing.T) {
	te := newTestEnv(t)
	te.call(t, "test_elicitation_sep1330_enums", `{}`)
	props := elicitedSchema(t, te)
	has := func(m map[string]any, key string) bool { _, ok := m[key]; return ok }
	obj := func(name string) map[string]any { m, _ := props[name].(map[string]any); return m }
	items := func(name string) map[string]any { m, _ := obj(name)["items"].(map[string]any); return m }

	if p := obj("untitledSingle"); p["type"] != "string" || !has(p, "enum") || has(p, "oneOf") || has(p, "enumNames") {
		t.Errorf("untitledSingle = %v", p)
	}
	if p := obj("titledSingle"); p["type"] != "string" || !has(p, "oneOf") || has(p, "enum") {
		t.Errorf("titledSingle = %v", p)
	}
	if p := obj("legacyEnum"); len(p["enum"].([]any)) != len(p["enumNames"].([]any)) {
		t.Errorf("legacyEnum = %v", p)
	}
	if p := items("untitledMulti"); obj("untitledMulti")["type"] != "array" || p["type"] != "string" || !has(p, "enum") || has(p, "anyOf") {
		t.Errorf("untitledMulti = %v", obj("untitledMulti"))
	}
	if p := items("titledMulti"); obj("titledMulti")["type"] != "array" || !has(p, "anyOf") || has(p, "enum") {
		t.Errorf("titledMulti = %v", obj("titledMulti"))
	}
}

func TestResources(t *testing.T) {
	te := newTestEnv(t)
	ctx := context.Background()
	list, err := te.cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Resources {
		if r.URI == "" || r.Name == "" || r.Description == "" {
			t.Errorf("resource %+v lacks uri, name or description", r)
		}
	}
	if len(list.Resources) != 3 {
		t.Errorf("got %d resources, want 3", len(list.Resources))
	}
	tests := []struct {
		uri, mime, text string
		blob            bool
	}{
		{uri: StaticTextURI, mime: "text/plain", text: StaticText},
		{uri: staticBinaryURI, mime: "image/png", blob: true},
		{uri: "test://template/123/data", mime: "application/json", text: `{"id":"123","templateTest":true,"data":"Data for ID: 123"}`},
		{uri: watchedURI, mime: "text/plain", text: "Watched resource content, version 0"},
	}
	for _, tt := range tests {
		res, err := te.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: tt.uri})
		if err != nil {
			t.Errorf("read %s: %v", tt.uri, err)
			continue
		}
		c := res.Contents[0]
		if c.URI != tt.uri || c.MIMEType != tt.mime || c.Text != tt.text || (len(c.Blob) > 0) != tt.blob {
			t.Errorf("read %s = %+v", tt.uri, c)
		}
	}
	_, err = te.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://nonexistent-resource-for-conformance-testing"})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != jsonrpc.CodeResourceNotFound {
		t.Errorf("reading an unknown resource: err = %v, want code %d", err, jsonrpc.CodeResourceNotFound)
	}
}

func TestSubscribe(t *testing.T) {
	te := newTestEnv(t)
	ctx := context.Background()
	if err := te.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: watchedURI}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := te.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: watchedURI}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	err := te.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "test://no-such-resource"})
	var we *jsonrpc.Error
	if !errors.As(err, &we) || we.Code != jsonrpc.CodeResourceNotFound {
		t.Errorf("subscribing to an unknown resource: err = %v, want code %d", err, jsonrpc.CodeResourceNotFound)
	}
}

func TestPrompts(t *testing.T) {
	te := newTestEnv(t)
	ctx := context.Background()
	list, err := te.cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Prompts) != 5 {
		t.Errorf("got %d prompts, want 5", len(list.Prompts))
	}
	for _, p := range list.Prompts {
		if p.Description == "" {
			t.Errorf("prompt %s has no description", p.Name)
		}
	}
	tests := []struct {
		name  string
		args  map[string]string
		types string
		want  []string
	}{
		{"test_simple_prompt", nil, "text", []string{"This is a simple prompt for testing."}},
		{"test_prompt_with_arguments", map[string]string{"arg1": "testValue1", "arg2": "testValue2"}, "text",
			[]string{"Prompt with arguments: arg1='testValue1', arg2='testValue2'"}},
		{"test_prompt_with_embedded_resource", map[string]string{"resourceUri": "test://example-resource"}, "resource,text",
			[]string{"test://example-resource", "Please process the embedded resource above."}},
		{"test_prompt_with_image", nil, "image,text", []string{"Please analyze the image above."}},
	}
	for _, tt := range tests {
		res, err := te.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: tt.name, Arguments: tt.args})
		if err != nil {
			t.Errorf("prompts/get %s: %v", tt.name, err)
			continue
		}
		var types []string
		for _, m := range res.Messages {
			types = append(types, m.Content.ContentType())
		}
		if got := strings.Join(types, ","); got != tt.types {
			t.Errorf("%s: content types %s, want %s", tt.name, got, tt.types)
		}
		b, _ := json.Marshal(res.Messages)
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: messages %s lack %q", tt.name, b, w)
			}
		}
	}
	if _, err := te.cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "test_prompt_with_arguments", Arguments: map[string]string{"arg1": "x"}}); err == nil {
		t.Error("prompts/get without a required argument succeeded")
	}
}

func TestComplete(t *testing.T) {
	te := newTestEnv(t)
	tests := []struct {
		ref       mcp.CompleteReference
		arg, val  string
		wantFirst string
		wantN     int
	}{
		{mcp.CompleteReference{Type: mcp.RefTypePrompt, Name: "test_prompt_with_arguments"}, "arg1", "test", "test", 2},
		{mcp.CompleteReference{Type: mcp.RefTypePrompt, Name: "test_prompt_with_arguments"}, "arg1", "zzz", "", 0},
		{mcp.CompleteReference{Type: mcp.RefTypeResource, URI: templateURI}, "id", "12", "123", 1},
		{mcp.CompleteReference{Type: mcp.RefTypePrompt, Name: "no_such_prompt"}, "x", "", "", 0},
	}
	for _, tt := range tests {
		res, err := te.cs.Complete(context.Background(), &mcp.CompleteParams{Ref: &tt.ref, Argument: mcp.CompleteArgument{Name: tt.arg, Value: tt.val}})
		if err != nil {
			t.Errorf("complete %v %s=%q: %v", tt.ref, tt.arg, tt.val, err)
			continue
		}
		v := res.Completion.Values
		if v == nil || len(v) != tt.wantN || (tt.wantN > 0 && v[0] != tt.wantFirst) {
			t.Errorf("complete %v %s=%q = %v, want %d values starting with %q", tt.ref, tt.arg, tt.val, v, tt.wantN, tt.wantFirst)
		}
	}
}

func TestCapabilities(t *testing.T) {
	te := newTestEnv(t)
	c := te.cs.InitializeResult().Capabilities
	if c.Tools == nil || !c.Tools.ListChanged || c.Resources == nil || !c.Resources.Subscribe || !c.Resources.ListChanged ||
		c.Prompts == nil || !c.Prompts.ListChanged || c.Logging == nil || c.Completions == nil {
		b, _ := json.Marshal(c)
		t.Errorf("capabilities = %s", b)
	}
}

func TestDynamicTool(t *testing.T) {
	te := newTestEnv(t)
	te.f.addDynamicTool()
	if got := firstText(t, te.call(t, "test_dynamic_tool", "")); got == "" {
		t.Error("test_dynamic_tool returned no text")
	}
}

func TestMedia(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(testPNG()))
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 16 {
		t.Errorf("PNG bounds = %v", b)
	}
	wav := testWAV()
	if string(wav[:4]) != "RIFF" || string(wav[8:16]) != "WAVEfmt " || string(wav[36:40]) != "data" {
		t.Fatalf("WAV header = %q", wav[:44])
	}
	if size := binary.LittleEndian.Uint32(wav[4:8]); int(size) != len(wav)-8 {
		t.Errorf("RIFF size = %d, file is %d bytes", size, len(wav))
	}
	if size := binary.LittleEndian.Uint32(wav[40:44]); int(size) != len(wav)-44 {
		t.Errorf("data size = %d, file is %d bytes", size, len(wav))
	}
}

func TestKnownURI(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{StaticTextURI, true},
		{staticBinaryURI, true},
		{watchedURI, true},
		{"test://template/123/data", true},
		{"test://template//data", false},
		{"test://template/1/2/data", false},
		{"test://template/123", false},
		{"test://nonexistent-resource-for-conformance-testing", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := knownURI(tt.uri); got != tt.want {
			t.Errorf("knownURI(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}

// FuzzKnownURI checks that knownURI accepts a template URI exactly when the
// server's template matching reads it as test://template/{id}/data.
func FuzzKnownURI(f *testing.F) {
	f.Add("test://template/123/data")
	f.Add("test://template//data")
	f.Add("test://static-text")
	f.Fuzz(func(t *testing.T, uri string) {
		if !knownURI(uri) || !strings.HasPrefix(uri, templatePrefix) {
			return
		}
		id := strings.TrimSuffix(strings.TrimPrefix(uri, templatePrefix), templateSuffix)
		if id == "" || strings.Contains(id, "/") || templatePrefix+id+templateSuffix != uri {
			t.Errorf("knownURI(%q) accepted a malformed template URI", uri)
		}
	})
}

// TestRun checks the timed behaviour: test_dynamic_tool appears (with a
// list_changed notification) and subscribed sessions, only they, are told
// when test://watched-resource changes.
func TestRun(t *testing.T) {
	f := NewServer(&Options{DynamicToolDelay: 20 * time.Millisecond, WatchedUpdateInterval: 20 * time.Millisecond})
	updates := make(chan string, 100)
	listChanged := make(chan struct{}, 10)
	connectClient := func(opts *mcp.ClientOptions) *mcp.ClientSession {
		ct, st := mcp.NewInMemoryTransports()
		ss, err := f.server.Connect(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "run-test", Version: "1"}, opts).Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close(); ss.Close() })
		return cs
	}
	cs := connectClient(&mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, _ *mcp.ClientSession, p *mcp.ResourceUpdatedNotificationParams) {
			updates <- p.URI
		},
		ToolListChangedHandler: func(context.Context, *mcp.ClientSession) { listChanged <- struct{}{} },
	})
	// A second session that does not subscribe must not be told.
	connectClient(&mcp.ClientOptions{
		ResourceUpdatedHandler: func(context.Context, *mcp.ClientSession, *mcp.ResourceUpdatedNotificationParams) {
			t.Error("an unsubscribed session got a resource update")
		},
	})
	if err := cs.Subscribe(context.Background(), &mcp.SubscribeParams{URI: watchedURI}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	timeout := time.After(5 * time.Second)
	select {
	case uri := <-updates:
		if uri != watchedURI {
			t.Errorf("update for %q, want %q", uri, watchedURI)
		}
	case <-timeout:
		t.Fatal("no resource update within 5s")
	}
	select {
	case <-listChanged:
	case <-timeout:
		t.Fatal("no tools/list_changed within 5s")
	}
	res, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: watchedURI})
	if err != nil {
		t.Fatal(err)
	}
	if res.Contents[0].Text == "Watched resource content, version 0" {
		t.Error("the watched resource did not change")
	}
	if firstText(t, mustCall(t, cs, "test_dynamic_tool")) == "" {
		t.Error("test_dynamic_tool returned no text")
	}

	// After unsubscribing, updates stop (allow one in flight).
	if err := cs.Unsubscribe(context.Background(), &mcp.UnsubscribeParams{URI: watchedURI}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for len(updates) > 0 {
		<-updates
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(updates); n > 0 {
		t.Errorf("%d updates after unsubscribing", n)
	}
}

func mustCall(t *testing.T, cs *mcp.ClientSession, name string) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func TestNewServerOptions(t *testing.T) {
	tests := []struct {
		name          string
		opts          *Options
		dynamic, tick time.Duration
	}{
		{"nil", nil, dynamicToolDelay, watchedUpdateInterval},
		{"zero", &Options{}, dynamicToolDelay, watchedUpdateInterval},
		{"negative", &Options{DynamicToolDelay: -1, WatchedUpdateInterval: -1}, dynamicToolDelay, watchedUpdateInterval},
		{"set", &Options{DynamicToolDelay: time.Second, WatchedUpdateInterval: 5 * time.Second}, time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		f := NewServer(tt.opts)
		if f.dynamicDelay != tt.dynamic || f.watchInterval != tt.tick || f.logger == nil || f.MCPServer() == nil {
			t.Errorf("%s: delay %v, interval %v, logger %v", tt.name, f.dynamicDelay, f.watchInterval, f.logger)
		}
	}
}
