// Copyright 2026 The mcpgate Authors. All rights reserved.

package mcp

import (
	stdjson "encoding/json"
	"testing"

	sdkmcp "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Baselines: the official Go SDK decoding and encoding the same result.

func BenchmarkCallToolResultDecodeGoSDK(b *testing.B) {
	data := []byte(toolsCallResult)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var r sdkmcp.CallToolResult
		if err := stdjson.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallToolResultEncodeGoSDK(b *testing.B) {
	var r sdkmcp.CallToolResult
	if err := stdjson.Unmarshal([]byte(toolsCallResult), &r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stdjson.Marshal(&r); err != nil {
			b.Fatal(err)
		}
	}
}
