// Package meta holds the OAuth wire types and small helpers shared by the
// MCP authorization client and authorization server: authorization server
// metadata (RFC 8414 / OpenID Connect Discovery), protected resource metadata
// (RFC 9728), client metadata and registration responses (RFC 7591, also used
// as Client ID Metadata Documents), token and error responses (RFC 6749,
// RFC 8693), the well-known URL builders used for discovery, a parser and
// formatter for WWW-Authenticate challenges (RFC 7235, RFC 6750, RFC 9728),
// PKCE helpers (RFC 7636) and the URNs for grant types, token types and
// client assertion types used by MCP and its authorization extensions.
//
// JSON is encoded and decoded with github.com/go-json-experiment/json:
// duplicate member names and invalid UTF-8 are rejected; members this
// package does not know are preserved in the Unknown field of each type.
package meta
