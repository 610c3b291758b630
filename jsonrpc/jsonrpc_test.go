package jsonrpc

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // re-encoded form
	}{
		{"request int id", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{"request string id", `{"id":"a\"b","jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}`, `{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"x"}}`},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{"result", ` {"jsonrpc":"2.0","id":7,"result":{"a":[1,2]}} `, `{"jsonrpc":"2.0","id":7,"result":{"a":[1,2]}}`},
		{"error null id", `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad","data":{"x":1}}}`, `{"jsonrpc":"2.0","error":{"code":-32700,"message":"bad","data":{"x":1}}}`},
		{"error without id", `{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad"}}`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad"}}`},
		{"error with id", `{"jsonrpc":"2.0","id":"r","error":{"code":-32601,"message":"no"}}`, `{"jsonrpc":"2.0","id":"r","error":{"code":-32601,"message":"no"}}`},
		{"unknown member ignored", `{"jsonrpc":"2.0","id":2,"method":"m","extra":true}`, `{"jsonrpc":"2.0","id":2,"method":"m"}`},
		{"negative id", `{"jsonrpc":"2.0","id":-5,"method":"m"}`, `{"jsonrpc":"2.0","id":-5,"method":"m"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := DecodeMessage([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			out, err := EncodeMessage(msg)
			if err != nil {
				t.Fatalf("EncodeMessage: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code int64
		msg  string
	}{
		{"not json", `{"jsonrpc":`, CodeParseError, "parse error"},
		{"duplicate member", `{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}`, CodeParseError, "duplicate"},
		{"nested duplicate", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}}`, CodeParseError, "duplicate"},
		{"escaped duplicate", `{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"m"}`, CodeParseError, "duplicate"},
		{"escaped known name", `{"jsonrpc":"2.0","\u0069d":2,"method":"m"}`, CodeInvalidRequest, "escaped"},
		{"invalid utf8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\xff\"}", CodeParseError, "UTF-8"},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"m"}]`, CodeInvalidRequest, "batch"},
		{"scalar", `42`, CodeInvalidRequest, "object"},
		{"null id request", `{"jsonrpc":"2.0","id":null,"method":"m"}`, CodeInvalidRequest, "null"},
		{"float id", `{"jsonrpc":"2.0","id":1.5,"method":"m"}`, CodeInvalidRequest, "integer"},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"m"}`, CodeInvalidRequest, "string or an integer"},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"m"}`, CodeInvalidRequest, "2.0"},
		{"missing version", `{"id":1,"method":"m"}`, CodeInvalidRequest, "2.0"},
		{"method not string", `{"jsonrpc":"2.0","id":1,"method":3}`, CodeInvalidRequest, "method must be a string"},
		{"params scalar", `{"jsonrpc":"2.0","id":1,"method":"m","params":3}`, CodeInvalidRequest, "params"},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}`, CodeInvalidRequest, "both"},
		{"method and result", `{"jsonrpc":"2.0","id":1,"method":"m","result":{}}`, CodeInvalidRequest, "both"},
		{"result without id", `{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest, "id"},
		{"empty object", `{}`, CodeInvalidRequest, "2.0"},
		{"neither", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "neither"},
		{"trailing data", `{"jsonrpc":"2.0","id":1,"method":"m"} {}`, CodeParseError, "after"},
		{"error without code", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, CodeInvalidRequest, "no code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMessage([]byte(tt.in))
			if err == nil {
				t.Fatal("DecodeMessage succeeded, want error")
			}
			if got := ErrorCode(err); got != tt.code {
				t.Errorf("code = %d, want %d (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	big := []byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"p":"` + strings.Repeat("x", 100) + `"}}`)
	if _, err := DecodeMessageLimit(big, 50); ErrorCode(err) != CodeInvalidRequest || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversize: got %v", err)
	}
	if _, err := DecodeMessageLimit(big, 0); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

func TestParamsAliasInput(t *testing.T) {
	in := []byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"k":"v"}}`)
	msg, err := DecodeMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	p := msg.(*Request).Params
	if !bytes.Equal(p, []byte(`{"k":"v"}`)) {
		t.Fatalf("params = %s", p)
	}
	// Appending to params must not overwrite the input that follows.
	_ = append(p, 'X')
	if string(in[len(in)-2:]) != "}}" {
		t.Fatal("append to params modified the input")
	}
}

func TestIDJSON(t *testing.T) {
	for _, id := range []ID{Int64ID(0), Int64ID(-9), StringID(""), StringID("é\n"), {}} {
		var got ID
		if err := got.UnmarshalJSON(id.AppendJSON(nil)); err != nil {
			t.Fatalf("%v: %v", id, err)
		}
		if got != id {
			t.Errorf("round trip %v -> %v", id, got)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	in := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"},"_meta":{"progressToken":"t1"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	m := &Response{ID: Int64ID(42), Result: []byte(`{"content":[{"type":"text","text":"hello world"}]}`)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
}
