package mcp

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestModernFastPathsMatchDecoding: the shortcuts of the modern hot path
// (params scanned once, CallToolParams built from the members found, the
// envelope cached, the result's head read without decoding the result)
// give what decoding the same bytes in full gives, or defer to it.
func TestModernFastPathsMatchDecoding(t *testing.T) {
	env := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"progressToken":7,"x":[1,"a",null,{"b":true}]}`
	params := []string{
		`{"name":"echo","arguments":{"text":"hello"},` + env + `}`,
		`{` + env + `, "name" : "echo" , "arguments" :  { "a" : [ 1 , 2 ] } }`,
		`{"name":"e\u0063ho","arguments":null,` + env + `}`,
		`{"name":null,` + env + `}`,
		`{"n\u0061me":"echo",` + env + `}`,
		`{"name":"echo","task":{"ttl":1000},` + env + `}`,
		`{"name":"échø","arguments":{"t":"\u00e9"},"_meta":null}`,
		`{"name":"echo","_meta":{"io.modelcontextprotocol/clientInfo":null,"a":{"b":{"c":[]}}}}`,
		`{}`,
		`{"name":"echo","other":{"name":"x"},"arguments":{}}`,
	}
	srv := NewServer(&Implementation{Name: "s", Version: "1"}, nil)
	for _, raw := range params {
		srv.envelope.meta.options(envelopeMembers...)
		for round := range 2 { // the second round hits the caches
			var want CallToolParams
			if err := json.Unmarshal([]byte(raw), &want); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			var mp modernParams
			if err := mp.scan(jsontext.Value(raw)); err != nil {
				t.Fatalf("scan %s: %v", raw, err)
			}
			var got CallToolParams
			switch err := mp.callToolParams(&got, &srv.envelope.meta); {
			case err == errUncommonParams:
				continue // callToolModern decodes in full
			case err != nil:
				t.Fatalf("%s: %v", raw, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round %d %s:\n got %#v\nwant %#v", round, raw, got, want)
			}
		}
	}

	// The envelope, cached or not, is what the general decoding reads.
	for _, meta := range []string{
		`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"io.modelcontextprotocol/logLevel":"info"}`,
		`{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":null}`,
		`{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`,
		`{"io.modelcontextprotocol/protocolVersion":"","io.modelcontextprotocol/clientCapabilities":{}}`,
		`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":[]}`,
		`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"loud"}`,
		`{"io.modelcontextprotocol/protocolVersion":"2026-\u00307-28","io.modelcontextprotocol/clientCapabilities":{}}`,
	} {
		want, werr := parseMetaGeneral(jsontext.Value(meta))
		for range 2 {
			got, gerr := srv.envelope.parse(jsontext.Value(meta))
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() || !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", meta, got, gerr, want, werr)
			}
		}
	}

	// The head of a result.
	for _, res := range []string{
		`{"content":[],"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"s","version":"1"}}}`,
		`{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list"}},"requestState":"x"}`,
		`{"resultType":"complete","ttlMs":1500.5,"cacheScope":"private"}`,
		`{"resultType":"t\u0061sk"}`,
		`{"tools":[]}`,
	} {
		var want, got resultHead
		werr := json.Unmarshal([]byte(res), &want)
		gerr := decodeResultHead(jsontext.Value(res), &got)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", res, got, gerr, want, werr)
		}
	}
}

// TestModernClientFastPaths: the envelope and headers the client builds
// without decoding the params carry what the general path puts there.
func TestModernClientFastPaths(t *testing.T) {
	c := NewClient(&Implementation{Name: "c", Version: "1"}, &ClientOptions{ProtocolVersion: Version20260728})
	cs := &ClientSession{client: c}
	m := &modernClient{version: Version20260728, headers: true, tools: map[string]*Tool{
		"t": {Name: "t", InputSchema: jsontext.Value(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)},
	}}
	for _, params := range []string{``, `null`, `{}`, `{"name":"t","arguments":{"region":"eu west"}}`, ` { "name" : "t" } `} {
		fast, ok := cs.fastEnvelope(m, jsontext.Value(params))
		if !ok {
			t.Fatalf("%q: no fast path", params)
		}
		m.wire = modernWire{} // the general path, from scratch
		var general jsontext.Value
		func() {
			obj := map[string]jsontext.Value{}
			if params != "" && params != "null" {
				if err := json.Unmarshal([]byte(params), &obj); err != nil {
					t.Fatal(err)
				}
			}
			meta := map[string]any{MetaProtocolVersion: m.version, MetaClientCapabilities: c.modernCapabilities(), MetaClientInfo: c.impl}
			out := map[string]any{"_meta": meta}
			for k, v := range obj {
				out[k] = v
			}
			general, _ = json.Marshal(out, json.Deterministic(true))
		}()
		var a, b any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("%q: fast envelope %s: %v", params, fast, err)
		}
		json.Unmarshal(general, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q:\n fast    %s\n general %s", params, fast, general)
		}
		h, ok := m.fastHTTPHeaders(MethodToolsCall, fast)
		if !ok {
			t.Fatalf("%q: no fast headers", params)
		}
		want := http.Header{headerProtocolVersion: {Version20260728}, headerMcpMethod: {MethodToolsCall}}
		if len(params) > 5 {
			want[headerMcpName] = []string{"t"}
		}
		if params == `{"name":"t","arguments":{"region":"eu west"}}` {
			want["Mcp-Param-Region"] = []string{"eu west"}
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("%q: headers %v, want %v", params, h, want)
		}
	}
	m.logLevel = LoggingLevelDebug
	if b, _ := cs.fastEnvelope(m, nil); !reflect.DeepEqual(mustDecode(t, b)["_meta"].(map[string]any)[MetaLogLevel], "debug") {
		t.Errorf("log level missing: %s", b)
	}
	if _, ok := cs.fastEnvelope(m, jsontext.Value(`{"_meta":{"progressToken":1}}`)); ok {
		t.Error("params with a _meta took the fast path")
	}
}

func mustDecode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
