package oauthclient

import "errors"

// Sentinel errors; returned errors wrap them (test with errors.Is).
var (
	// ErrResourceMismatch means the protected resource metadata names a
	// resource other than the MCP server being accessed.
	ErrResourceMismatch = errors.New("oauthclient: protected resource metadata resource does not match the server URL")
	// ErrPKCENotSupported means the authorization server does not
	// advertise S256 in code_challenge_methods_supported.
	ErrPKCENotSupported = errors.New("oauthclient: authorization server does not advertise S256 PKCE support")
	// ErrNoClientIdentity means no pre-registered client, no usable Client
	// ID Metadata Document URL and no dynamic registration was available.
	ErrNoClientIdentity = errors.New("oauthclient: no client identity: configure a pre-registered client_id, a client ID metadata document URL, or use an authorization server that supports dynamic registration")
	// ErrStateMismatch means the authorization response's state differs
	// from the one sent (or is missing).
	ErrStateMismatch = errors.New("oauthclient: authorization response state mismatch")
	// ErrIssuerMismatch means the authorization response's iss parameter is
	// missing although the server advertised RFC 9207 support, or differs
	// from the authorization server's issuer.
	ErrIssuerMismatch = errors.New("oauthclient: authorization response issuer mismatch")
	// ErrDiscovery means no protected resource or authorization server
	// metadata could be found.
	ErrDiscovery = errors.New("oauthclient: discovery failed")
	// ErrNoAuthorizationHandler means an authorization code flow was needed
	// but Config.AuthorizationHandler is nil.
	ErrNoAuthorizationHandler = errors.New("oauthclient: no authorization handler configured")
	// ErrStepUpLimit means a 403 insufficient_scope persisted after the
	// allowed number of step-up authorizations.
	ErrStepUpLimit = errors.New("oauthclient: step-up authorization limit reached")
	// ErrUnsupportedTokenType means the token endpoint issued a token type
	// other than Bearer.
	ErrUnsupportedTokenType = errors.New("oauthclient: unsupported token type")
)
