package jsonrpc

import (
	"bytes"
	"testing"
)

// FuzzDecodeMessage checks that any input either decodes into a message that
// re-encodes to something that decodes to the same message, or fails with a
// JSON-RPC error; it must never panic.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m","data":[1]}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}`,
		`[{"jsonrpc":"2.0"}]`,
		`{"jsonrpc":"2.0","id":1,"id":2}`,
		"{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		msg, err := DecodeMessage(data)
		if !bytes.Equal(in, data) {
			t.Fatal("DecodeMessage modified its input")
		}
		if err != nil {
			if ErrorCode(err) != CodeParseError && ErrorCode(err) != CodeInvalidRequest {
				t.Fatalf("unexpected error code %d: %v", ErrorCode(err), err)
			}
			return
		}
		out, err := EncodeMessage(msg)
		if err != nil {
			t.Fatalf("EncodeMessage: %v", err)
		}
		msg2, err := DecodeMessage(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		out2, _ := EncodeMessage(msg2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("unstable encoding:\n%s\n%s", out, out2)
		}
	})
}
