// Package interop holds tests that run mcpgate's mcp package against peer
// implementations (the official Go SDK, the TypeScript SDK) in both roles
// and over every transport they share. It has no non-test code.
package interop
