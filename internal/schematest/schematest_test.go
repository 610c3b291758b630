// Copyright 2026 The mcpgate Authors. All rights reserved.

package schematest

import (
	"strings"
	"testing"
)

func TestDefinitions(t *testing.T) {
	defs := Definitions()
	if len(defs) < 100 {
		t.Fatalf("Definitions() = %d names, want the full 2025-11-25 schema (>100)", len(defs))
	}
	for _, want := range []string{"JSONRPCRequest", "CallToolResult", "Tool", "Task", "ElicitRequestURLParams"} {
		found := false
		for _, d := range defs {
			if d == want {
				found = true
			}
		}
		if !found {
			t.Errorf("definition %s missing", want)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		def, doc string
		wantErr  string // substring; empty means valid
	}{
		{"JSONRPCRequest", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, ""},
		{"JSONRPCRequest", `{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}`, ""},
		{"JSONRPCRequest", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, "JSONRPCRequest"},
		{"JSONRPCRequest", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, "JSONRPCRequest"},
		{"CallToolResult", `{"content":[{"type":"text","text":"hi"}]}`, ""},
		{"CallToolResult", `{"content":[{"type":"text"}]}`, "CallToolResult"},
		{"CallToolResult", `{}`, "CallToolResult"},
		{"Resource", `{"uri":"file:///a","name":"a"}`, ""},
		{"Resource", `{"uri":"not a uri","name":"a"}`, "Resource"}, // format assertion is on
		{"NoSuchDefinition", `{}`, "no definition"},
		{"Tool", `{"name":`, "invalid JSON"},
	}
	for _, tt := range tests {
		err := Check(tt.def, []byte(tt.doc))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Check(%s, %s) = %v, want nil", tt.def, tt.doc, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("Check(%s, %s) = nil, want error", tt.def, tt.doc)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("Check(%s, %s) = %v, want it to mention %q", tt.def, tt.doc, err, tt.wantErr)
		}
	}
}

// fakeTB records Errorf calls.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }

func TestValidateReports(t *testing.T) {
	f := &fakeTB{TB: t}
	if !Validate(f, "EmptyResult", []byte(`{}`)) || f.failed {
		t.Error("Validate rejected a valid EmptyResult")
	}
	f = &fakeTB{TB: t}
	if Validate(f, "Task", []byte(`{"taskId":"x"}`)) || !f.failed {
		t.Error("Validate accepted an invalid Task without reporting")
	}
}

func TestSchemaIsCopy(t *testing.T) {
	a := Schema()
	a[0] = 'X'
	if Schema()[0] == 'X' {
		t.Error("Schema() returned the embedded slice, not a copy")
	}
}
