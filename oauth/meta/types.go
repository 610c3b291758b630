package meta

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// AuthorizationServerMetadata is OAuth 2.0 Authorization Server Metadata
// (RFC 8414 §2), which is also the shape of an OpenID Provider configuration
// for the members MCP uses.
type AuthorizationServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                              string   `json:"token_endpoint,omitempty"`
	JWKSURI                                    string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                     []string `json:"response_types_supported,omitempty"`
	ResponseModesSupported                     []string `json:"response_modes_supported,omitempty"`
	GrantTypesSupported                        []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	ServiceDocumentation                       string   `json:"service_documentation,omitempty"`
	RevocationEndpoint                         string   `json:"revocation_endpoint,omitempty"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint,omitempty"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported is RFC 9207 §3: when true
	// the client must check the iss parameter of authorization responses.
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// ClientIDMetadataDocumentSupported advertises Client ID Metadata
	// Document support (draft-ietf-oauth-client-id-metadata-document).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// AuthorizationGrantProfilesSupported lists supported authorization
	// grant profiles, e.g. GrantProfileIDJAG.
	AuthorizationGrantProfilesSupported []string `json:"authorization_grant_profiles_supported,omitempty"`
	// DPoPSigningAlgValuesSupported lists the JWS algorithms accepted for
	// DPoP proofs (RFC 9449 §5.1); its presence signals DPoP support.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// OpenID Connect Discovery members that MCP clients may look at.
	UserinfoEndpoint                 string   `json:"userinfo_endpoint,omitempty"`
	SubjectTypesSupported            []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`

	// Unknown holds members not listed above, preserved verbatim.
	Unknown jsontext.Value `json:",embed"`
}

// SupportsPKCES256 reports whether the metadata advertises the S256 PKCE
// method. MCP clients must refuse to proceed when it does not.
func (m *AuthorizationServerMetadata) SupportsPKCES256() bool {
	return slices.Contains(m.CodeChallengeMethodsSupported, CodeChallengeMethodS256)
}

// SupportsGrantType reports whether grant is in grant_types_supported. When
// the member is absent RFC 8414 defines the default as
// ["authorization_code", "implicit"].
func (m *AuthorizationServerMetadata) SupportsGrantType(grant string) bool {
	if m.GrantTypesSupported == nil {
		return grant == GrantTypeAuthorizationCode || grant == "implicit"
	}
	return slices.Contains(m.GrantTypesSupported, grant)
}

// SupportsAuthMethod reports whether method is in
// token_endpoint_auth_methods_supported; when absent RFC 8414 defines the
// default as client_secret_basic.
func (m *AuthorizationServerMetadata) SupportsAuthMethod(method string) bool {
	if m.TokenEndpointAuthMethodsSupported == nil {
		return method == AuthMethodClientSecretBasic
	}
	return slices.Contains(m.TokenEndpointAuthMethodsSupported, method)
}

// Validate checks the members RFC 8414 requires and that every endpoint is
// an absolute http(s) URL without a fragment. It does not check the issuer
// against the discovery URL; see ValidateIssuer.
func (m *AuthorizationServerMetadata) Validate() error {
	if m.Issuer == "" {
		return errors.New("authorization server metadata: missing issuer")
	}
	if err := checkEndpoint("issuer", m.Issuer); err != nil {
		return err
	}
	u, _ := url.Parse(m.Issuer)
	if u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("authorization server metadata: issuer %q has a query", m.Issuer)
	}
	for _, e := range []struct{ name, v string }{
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"token_endpoint", m.TokenEndpoint},
		{"jwks_uri", m.JWKSURI},
		{"registration_endpoint", m.RegistrationEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint},
		{"introspection_endpoint", m.IntrospectionEndpoint},
		{"userinfo_endpoint", m.UserinfoEndpoint},
	} {
		if e.v == "" {
			continue
		}
		if err := checkEndpoint(e.name, e.v); err != nil {
			return err
		}
	}
	return nil
}

// ValidateIssuer checks that the metadata's issuer is identical to the
// issuer identifier the metadata was looked up for (RFC 8414 §3.3). A single
// trailing slash difference is tolerated because MCP servers commonly list
// "https://as.example/" in authorization_servers while the issuer is
// "https://as.example".
func (m *AuthorizationServerMetadata) ValidateIssuer(expected string) error {
	if m.Issuer == expected || strings.TrimSuffix(m.Issuer, "/") == strings.TrimSuffix(expected, "/") {
		return nil
	}
	return fmt.Errorf("authorization server metadata: issuer %q does not match expected issuer %q", m.Issuer, expected)
}

// ParseAuthorizationServerMetadata decodes and validates authorization
// server metadata.
func ParseAuthorizationServerMetadata(data []byte) (*AuthorizationServerMetadata, error) {
	var m AuthorizationServerMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("authorization server metadata: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ProtectedResourceMetadata is OAuth 2.0 Protected Resource Metadata
// (RFC 9728 §2).
type ProtectedResourceMetadata struct {
	Resource                              string   `json:"resource"`
	AuthorizationServers                  []string `json:"authorization_servers,omitempty"`
	JWKSURI                               string   `json:"jwks_uri,omitempty"`
	ScopesSupported                       []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported                []string `json:"bearer_methods_supported,omitempty"`
	ResourceSigningAlgValuesSupported     []string `json:"resource_signing_alg_values_supported,omitempty"`
	ResourceName                          string   `json:"resource_name,omitempty"`
	ResourceDocumentation                 string   `json:"resource_documentation,omitempty"`
	ResourcePolicyURI                     string   `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI                        string   `json:"resource_tos_uri,omitempty"`
	TLSClientCertificateBoundAccessTokens bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	AuthorizationDetailsTypesSupported    []string `json:"authorization_details_types_supported,omitempty"`
	DPoPSigningAlgValuesSupported         []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundAccessTokensRequired         bool     `json:"dpop_bound_access_tokens_required,omitempty"`

	// Unknown holds members not listed above, preserved verbatim.
	Unknown jsontext.Value `json:",embed"`
}

// Validate checks that resource is present and an absolute http(s) URL
// without a fragment, and that every authorization server is one too.
func (m *ProtectedResourceMetadata) Validate() error {
	if m.Resource == "" {
		return errors.New("protected resource metadata: missing resource")
	}
	if err := checkEndpoint("resource", m.Resource); err != nil {
		return fmt.Errorf("protected resource metadata: %w", err)
	}
	for _, as := range m.AuthorizationServers {
		if err := checkEndpoint("authorization_servers", as); err != nil {
			return fmt.Errorf("protected resource metadata: %w", err)
		}
	}
	return nil
}

// ParseProtectedResourceMetadata decodes and validates protected resource
// metadata.
func ParseProtectedResourceMetadata(data []byte) (*ProtectedResourceMetadata, error) {
	var m ProtectedResourceMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("protected resource metadata: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ClientMetadata is OAuth 2.0 Dynamic Client Registration client metadata
// (RFC 7591 §2). It is the body of a registration request, and, with
// ClientID set to its own URL, a Client ID Metadata Document.
type ClientMetadata struct {
	// ClientID is set in a Client ID Metadata Document (where it must equal
	// the document's URL) and in registration responses.
	ClientID                string         `json:"client_id,omitempty"`
	RedirectURIs            []string       `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string         `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string       `json:"grant_types,omitempty"`
	ResponseTypes           []string       `json:"response_types,omitempty"`
	ClientName              string         `json:"client_name,omitempty"`
	ClientURI               string         `json:"client_uri,omitempty"`
	LogoURI                 string         `json:"logo_uri,omitempty"`
	Scope                   string         `json:"scope,omitempty"`
	Contacts                []string       `json:"contacts,omitempty"`
	TOSURI                  string         `json:"tos_uri,omitempty"`
	PolicyURI               string         `json:"policy_uri,omitempty"`
	JWKSURI                 string         `json:"jwks_uri,omitempty"`
	JWKS                    jsontext.Value `json:"jwks,omitempty"`
	SoftwareID              string         `json:"software_id,omitempty"`
	SoftwareVersion         string         `json:"software_version,omitempty"`
	SoftwareStatement       string         `json:"software_statement,omitempty"`
	// TokenEndpointAuthSigningAlg is the JWS alg the client uses for
	// private_key_jwt (OpenID Connect Dynamic Client Registration §2).
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	// ApplicationType is "native" or "web" (OpenID Connect Dynamic Client
	// Registration §2).
	ApplicationType string `json:"application_type,omitempty"`

	// Unknown holds members not listed above, preserved verbatim.
	Unknown jsontext.Value `json:",embed"`
}

// ParseClientMetadata decodes client metadata without further validation.
func ParseClientMetadata(data []byte) (*ClientMetadata, error) {
	var m ClientMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("client metadata: %w", err)
	}
	return &m, nil
}

// ValidateClientIDMetadataDocument checks a Client ID Metadata Document
// fetched from docURL: client_id must equal docURL exactly, client_name and
// redirect_uris must be present, and no client secret may be embedded.
func (m *ClientMetadata) ValidateClientIDMetadataDocument(docURL string) error {
	if err := ValidateClientIDMetadataURL(docURL); err != nil {
		return err
	}
	if m.ClientID != docURL {
		return fmt.Errorf("client metadata document: client_id %q does not match document URL %q", m.ClientID, docURL)
	}
	if m.ClientName == "" {
		return errors.New("client metadata document: missing client_name")
	}
	if len(m.RedirectURIs) == 0 {
		return errors.New("client metadata document: missing redirect_uris")
	}
	switch m.TokenEndpointAuthMethod {
	case AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodClientSecretJWT:
		return fmt.Errorf("client metadata document: token_endpoint_auth_method %q needs a shared secret", m.TokenEndpointAuthMethod)
	}
	return nil
}

// ValidateClientIDMetadataURL checks that s may be used as a URL client_id:
// an https URL with a non-root path, no fragment, no user info and no dot
// segments.
func ValidateClientIDMetadataURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("client_id metadata URL: %w", err)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("client_id metadata URL %q: scheme must be https", s)
	case u.Host == "":
		return fmt.Errorf("client_id metadata URL %q: missing host", s)
	case u.User != nil:
		return fmt.Errorf("client_id metadata URL %q: must not contain user info", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("client_id metadata URL %q: must not contain a fragment", s)
	case u.Path == "" || u.Path == "/":
		return fmt.Errorf("client_id metadata URL %q: must contain a path", s)
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("client_id metadata URL %q: must not contain dot segments", s)
		}
	}
	return nil
}

// ClientInformation is a successful client registration response
// (RFC 7591 §3.2.1): the registered metadata plus the issued credentials.
type ClientInformation struct {
	ClientMetadata
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
}

// ParseClientInformation decodes a registration response and checks that a
// client_id was issued.
func ParseClientInformation(data []byte) (*ClientInformation, error) {
	var c ClientInformation
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("client registration response: %w", err)
	}
	if c.ClientID == "" {
		return nil, errors.New("client registration response: missing client_id")
	}
	return &c, nil
}

// TokenResponse is a successful token endpoint response (RFC 6749 §5.1,
// RFC 8693 §2.2.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// ExpiresIn is the lifetime in seconds; 0 means unspecified.
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// IssuedTokenType is set by token exchange (RFC 8693).
	IssuedTokenType string `json:"issued_token_type,omitempty"`

	// Unknown holds members not listed above, preserved verbatim.
	Unknown jsontext.Value `json:",embed"`
}

// ParseTokenResponse decodes a token response and checks that access_token
// and token_type are present.
func ParseTokenResponse(data []byte) (*TokenResponse, error) {
	var t TokenResponse
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if t.AccessToken == "" {
		return nil, errors.New("token response: missing access_token")
	}
	if t.TokenType == "" {
		return nil, errors.New("token response: missing token_type")
	}
	if t.ExpiresIn < 0 {
		return nil, fmt.Errorf("token response: negative expires_in %d", t.ExpiresIn)
	}
	return &t, nil
}

// Error is an OAuth error response (RFC 6749 §5.2), also used for
// authorization error redirects and registration errors. It implements error.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
	// StatusCode is the HTTP status the error came with, if known; it is
	// not part of the JSON body.
	StatusCode int `json:"-"`
}

// Error formats the error code and description.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oauth error")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	b.WriteString(": ")
	b.WriteString(e.Code)
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// ParseError decodes an OAuth error response body. It fails if the body is
// not JSON or has no error member.
func ParseError(data []byte, status int) (*Error, error) {
	var e Error
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("oauth error response: %w", err)
	}
	if e.Code == "" {
		return nil, errors.New("oauth error response: missing error")
	}
	e.StatusCode = status
	return &e, nil
}

func checkEndpoint(name, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%s %q: scheme must be https or http", name, s)
	}
	if u.Host == "" {
		return fmt.Errorf("%s %q: missing host", name, s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%s %q: must not contain a fragment", name, s)
	}
	return nil
}
