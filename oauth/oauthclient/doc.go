// Package oauthclient is the client side of MCP authorization (MCP
// 2025-11-25 "Authorization", plus the OAuth client credentials and
// enterprise-managed authorization extensions).
//
// Most callers use NewTransport: an http.RoundTripper for the MCP Streamable
// HTTP client that adds "Authorization: Bearer" to requests for the MCP
// server and, when the server answers 401 (or 403 insufficient_scope),
// discovers the authorization server, obtains a token and replays the
// request:
//
//	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
//		ServerURL:           "https://mcp.example.com/mcp",
//		ClientIDMetadataURL: "https://app.example.com/client.json",
//		RedirectURL:         recv.RedirectURL(),
//		AuthorizationHandler: recv,
//	})
//	httpClient := &http.Client{Transport: tr}
//
// Config.Flow selects how tokens are obtained: the authorization code
// grant with PKCE (default; the user agent is driven by an
// AuthorizationCodeHandler such as LoopbackReceiver or HeadlessHandler),
// client credentials, enterprise-managed authorization (ID token → ID-JAG
// → jwt-bearer), or a plain RFC 7523 jwt-bearer grant with a caller-supplied
// assertion (workload identity). With Config.DPoP, tokens are DPoP-bound
// (RFC 9449) when the authorization server supports it, including
// server-nonce handling at the token endpoint and the MCP server.
//
// The steps are also available one by one (Discover, Register, Authorize,
// ClientCredentials, EnterpriseExchange, RequestIDJAG, JWTBearer, Refresh)
// for callers such as the gateway that manage tokens themselves.
//
// Discovery follows the specification's order: the resource_metadata URL
// from WWW-Authenticate, else the path-inserted and then the root
// protected resource metadata well-known URL; the metadata's resource must
// name the server (same origin, and a path prefix of the server URL on a
// segment boundary), and its exact string is sent as the resource parameter
// of every authorization and token request. Authorization server metadata
// is looked up at the RFC 8414 and OpenID Connect well-known URLs in the
// specification's order; its issuer must equal the issuer it was looked up
// for, and S256 PKCE must be advertised before an authorization code flow
// starts. With Config.Legacy20250326 the 2025-03-26 behaviour is the
// fallback when no protected resource metadata exists: metadata at the MCP
// server's root and then the default /authorize, /token and /register
// endpoints.
//
// All discovery, registration and token requests go through an SSRF-safe
// client from package safehttp: https only (plain http only to loopback
// hosts when allowed), no private, link-local or metadata-service
// addresses, no cross-origin redirects.
//
// A token is only attached to requests for the resource it was issued for
// (same origin and path prefix), and never put in a URL.
package oauthclient
