// Package e2e holds end-to-end tests that put several of mcpgate's packages
// together on 127.0.0.1, the way a deployment does. It has no code of its
// own; see the _test.go files.
//
// oauth_e2e_test.go runs the built-in authorization server
// (oauth/authserver), a resource server (oauth/resource) protecting the
// conformance everything server (conformance/everything) over Streamable
// HTTP, a test identity provider and a host for Client ID Metadata
// Documents, and then has the project's OAuth client (oauth/oauthclient)
// with the MCP client (mcp) obtain tokens and call tools and read resources
// with each grant: the authorization code grant with PKCE and a login and
// consent driven through the real pages, a Client ID Metadata Document
// client, client credentials with private_key_jwt, and enterprise-managed
// authorization (ID token, RFC 8693 exchange for an ID-JAG, jwt-bearer
// grant). It also checks that tokens for another audience, expired tokens
// and revoked tokens are refused. Every test runs once with the in-memory
// store and once with store/sqlite.
//
// enterprise_e2e_test.go runs Cross App Access toward an upstream: a
// client → gateway A (users signed in through internal/testidp) → the
// identity provider's token exchange → gateway B's built-in authorization
// server (trusting the provider for ID-JAGs) → the MCP server behind B;
// credential_examples_e2e_test.go runs the examples of
// docs/upstream-credentials.md together in one gateway.
package e2e
