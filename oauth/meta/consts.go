package meta

// Grant types (the grant_type token request parameter and the
// grant_types_supported / grant_types metadata values).
const (
	// GrantTypeAuthorizationCode is the authorization code grant (OAuth 2.1 §4.1).
	GrantTypeAuthorizationCode = "authorization_code"
	// GrantTypeRefreshToken is the refresh token grant (OAuth 2.1 §4.3).
	GrantTypeRefreshToken = "refresh_token"
	// GrantTypeClientCredentials is the client credentials grant (OAuth 2.1 §4.2).
	GrantTypeClientCredentials = "client_credentials"
	// GrantTypeJWTBearer is the JWT authorization grant (RFC 7523 §2.1), used
	// with an ID-JAG by enterprise-managed authorization.
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// GrantTypeTokenExchange is OAuth 2.0 Token Exchange (RFC 8693 §2.1).
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Token type identifiers (RFC 8693 §3) and the ID-JAG token type.
const (
	// TokenTypeAccessToken identifies an OAuth access token.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// TokenTypeRefreshToken identifies an OAuth refresh token.
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	// TokenTypeIDToken identifies an OpenID Connect ID Token.
	TokenTypeIDToken = "urn:ietf:params:oauth:token-type:id_token"
	// TokenTypeSAML2 identifies a base64url-encoded SAML 2.0 assertion.
	TokenTypeSAML2 = "urn:ietf:params:oauth:token-type:saml2"
	// TokenTypeJWT identifies a JWT.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
	// TokenTypeIDJAG identifies an Identity Assertion JWT Authorization Grant
	// (draft-ietf-oauth-identity-assertion-authz-grant).
	TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"
)

// Access token types (the token_type token response member).
const (
	// TokenTypeBearer is the Bearer access token type (RFC 6750).
	TokenTypeBearer = "Bearer"
	// TokenTypeDPoP is the DPoP-bound access token type (RFC 9449 §5).
	TokenTypeDPoP = "DPoP"
	// TokenTypeNA is the token_type returned by token exchange when the issued
	// token is not an access token (RFC 8693 §2.2.1), e.g. an ID-JAG.
	TokenTypeNA = "N_A"
)

// ClientAssertionTypeJWTBearer is the client_assertion_type for JWT client
// authentication (RFC 7523 §2.2), i.e. private_key_jwt.
const ClientAssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DPoPJWTType is the "typ" JOSE header value of a DPoP proof (RFC 9449 §4.2).
const DPoPJWTType = "dpop+jwt"

// IDJAGJWTType is the "typ" JOSE header value of an ID-JAG.
const IDJAGJWTType = "oauth-id-jag+jwt"

// GrantProfileIDJAG is the authorization_grant_profiles_supported value that
// advertises support for the Identity Assertion JWT Authorization Grant.
const GrantProfileIDJAG = "urn:ietf:params:oauth:grant-profile:id-jag"

// Token endpoint client authentication methods
// (token_endpoint_auth_method, token_endpoint_auth_methods_supported).
const (
	// AuthMethodNone is a public client with no client authentication.
	AuthMethodNone = "none"
	// AuthMethodClientSecretBasic sends the secret in HTTP Basic authentication.
	AuthMethodClientSecretBasic = "client_secret_basic"
	// AuthMethodClientSecretPost sends the secret in the request body.
	AuthMethodClientSecretPost = "client_secret_post"
	// AuthMethodPrivateKeyJWT authenticates with a JWT signed by the client's
	// private key (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthMethodPrivateKeyJWT = "private_key_jwt"
	// AuthMethodClientSecretJWT authenticates with a JWT MACed with the secret.
	AuthMethodClientSecretJWT = "client_secret_jwt"
)

// PKCE code challenge methods (RFC 7636).
const (
	// CodeChallengeMethodS256 is the SHA-256 method; MCP requires it.
	CodeChallengeMethodS256 = "S256"
	// CodeChallengeMethodPlain is the plain method; MCP clients never use it.
	CodeChallengeMethodPlain = "plain"
)

// ResponseTypeCode is the authorization code response type.
const ResponseTypeCode = "code"

// OAuth error codes (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; RFC 7591 §3.2.2;
// RFC 8693 §2.2.2).
const (
	// ErrInvalidRequest means the request is missing or has a malformed parameter.
	ErrInvalidRequest = "invalid_request"
	// ErrInvalidClient means client authentication failed.
	ErrInvalidClient = "invalid_client"
	// ErrInvalidGrant means the grant (code, refresh token, assertion) is invalid.
	ErrInvalidGrant = "invalid_grant"
	// ErrUnauthorizedClient means the client may not use this grant type.
	ErrUnauthorizedClient = "unauthorized_client"
	// ErrUnsupportedGrantType means the grant type is not supported.
	ErrUnsupportedGrantType = "unsupported_grant_type"
	// ErrInvalidScope means the requested scope is invalid.
	ErrInvalidScope = "invalid_scope"
	// ErrAccessDenied means the resource owner or server denied the request.
	ErrAccessDenied = "access_denied"
	// ErrUnsupportedResponseType means the response type is not supported.
	ErrUnsupportedResponseType = "unsupported_response_type"
	// ErrServerError means the server had an unexpected error.
	ErrServerError = "server_error"
	// ErrTemporarilyUnavailable means the server is temporarily unavailable.
	ErrTemporarilyUnavailable = "temporarily_unavailable"
	// ErrInvalidToken means the access token is invalid (RFC 6750).
	ErrInvalidToken = "invalid_token"
	// ErrInsufficientScope means the access token lacks the required scope (RFC 6750).
	ErrInsufficientScope = "insufficient_scope"
	// ErrInvalidRedirectURI means a registration redirect URI is invalid (RFC 7591).
	ErrInvalidRedirectURI = "invalid_redirect_uri"
	// ErrInvalidClientMetadata means a registration metadata value is invalid (RFC 7591).
	ErrInvalidClientMetadata = "invalid_client_metadata"
	// ErrInvalidTarget means the resource or audience is invalid (RFC 8707, RFC 8693).
	ErrInvalidTarget = "invalid_target"
	// ErrUseDPoPNonce means the server requires a DPoP nonce, supplied in
	// the DPoP-Nonce header (RFC 9449 §8, §9).
	ErrUseDPoPNonce = "use_dpop_nonce"
)

// Well-known URI suffixes.
const (
	// WellKnownProtectedResource is the RFC 9728 well-known suffix.
	WellKnownProtectedResource = "oauth-protected-resource"
	// WellKnownAuthorizationServer is the RFC 8414 well-known suffix.
	WellKnownAuthorizationServer = "oauth-authorization-server"
	// WellKnownOpenIDConfiguration is the OpenID Connect Discovery suffix.
	WellKnownOpenIDConfiguration = "openid-configuration"
)
