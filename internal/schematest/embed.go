// Copyright 2026 The mcpgate Authors. All rights reserved.

package schematest

import _ "embed"

// schemaJSON is the official MCP 2025-11-25 schema.json.
//
//go:embed schema-2025-11-25.json
var schemaJSON []byte
