// Copyright 2026 The mcpgate Authors. All rights reserved.

// Package schematest validates JSON documents against the definitions of the
// MCP 2025-11-25 JSON Schema, for use in tests.
//
// The schema is embedded from schema-2025-11-25.json in this directory, a
// copy of the official schema.json of the 2025-11-25 revision. Every
// definition is compiled once, on first use, with format assertions on.
//
//	schematest.Validate(t, "JSONRPCRequest", msg)
//	schematest.Validate(t, "CallToolResult", result)
package schematest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaURL is the URL under which the embedded schema is registered; it is
// the $id-less location used in error messages.
const SchemaURL = "https://modelcontextprotocol.io/specification/2025-11-25/schema.json"

// compiled holds every compiled definition, keyed by name. It is computed
// once and never modified afterwards.
var compiled = sync.OnceValues(compileAll)

func compileAll() (map[string]*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("schematest: parse embedded schema: %w", err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schematest: embedded schema is not an object")
	}
	defs, ok := root["$defs"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schematest: embedded schema has no $defs")
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(SchemaURL, doc); err != nil {
		return nil, fmt.Errorf("schematest: add schema: %w", err)
	}
	out := make(map[string]*jsonschema.Schema, len(defs))
	for name := range defs {
		s, err := c.Compile(SchemaURL + "#/$defs/" + name)
		if err != nil {
			return nil, fmt.Errorf("schematest: compile %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// Definitions returns the names of all definitions in the schema, sorted.
func Definitions() []string {
	m, err := compiled()
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Schema returns a copy of the embedded schema document.
func Schema() []byte { return slices.Clone(schemaJSON) }

// Check validates data, a JSON document, against #/$defs/<definition> of the
// MCP 2025-11-25 schema. It returns an error that describes every violation,
// or nil if data is valid.
func Check(definition string, data []byte) error {
	m, err := compiled()
	if err != nil {
		return err
	}
	s, ok := m[definition]
	if !ok {
		return fmt.Errorf("schematest: no definition %q in the MCP 2025-11-25 schema", definition)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("schematest: %s: invalid JSON: %w", definition, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("schematest: document does not match %s: %w", definition, err)
	}
	return nil
}

// Validate reports a test error (not fatal) if data does not match
// #/$defs/<definition> of the MCP 2025-11-25 schema. It returns whether data
// is valid.
func Validate(t testing.TB, definition string, data []byte) bool {
	t.Helper()
	if err := Check(definition, data); err != nil {
		t.Errorf("%v\ndocument: %s", err, truncate(data, 4096))
		return false
	}
	return true
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	var sb strings.Builder
	sb.Write(b[:n])
	fmt.Fprintf(&sb, "... (%d more bytes)", len(b)-n)
	return sb.String()
}
