package authserver

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/oauth/meta"
)

// maxFormBytes caps the body of token, revocation, introspection and
// form-post requests.
const maxFormBytes = 64 << 10

// maxParamLen caps any one request parameter.
const maxParamLen = 8 << 10

// parseUniqueValues parses an application/x-www-form-urlencoded string
// and refuses repeated parameters (RFC 6749 §3.1, §3.2), over-long values
// and invalid UTF-8. Empty values count as absent (RFC 6749 §3.1).
func parseUniqueValues(raw string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errInvalidRequest("malformed parameters: %v", err)
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		if len(vs) > 1 {
			return nil, errInvalidRequest("parameter %q is repeated", k)
		}
		v := vs[0]
		if len(v) > maxParamLen {
			return nil, errInvalidRequest("parameter %q is too long", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errInvalidRequest("parameter %q is not valid UTF-8", k)
		}
		if v != "" {
			out[k] = v
		}
	}
	return out, nil
}

// readForm reads a POSTed form body of at most maxFormBytes.
func readForm(r *http.Request) (map[string]string, error) {
	if r.Method != http.MethodPost {
		return nil, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "method %s not allowed; use POST", r.Method)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil {
		return nil, errInvalidRequest("reading body: %v", err)
	}
	if len(body) > maxFormBytes {
		return nil, oauthErr(http.StatusRequestEntityTooLarge, meta.ErrInvalidRequest, "request body larger than %d bytes", maxFormBytes)
	}
	return parseUniqueValues(string(body))
}

// AuthorizeRequest is a parsed authorization request (RFC 6749 §4.1.1
// with PKCE, RFC 8707 resource and OAuth 2.1 rules). Parsing checks
// syntax only; the client, redirect URI and resource are checked against
// registrations by the server.
type AuthorizeRequest struct {
	ResponseType        string // response_type; only "code" is served
	ClientID            string // client_id (an https URL for metadata-document clients)
	RedirectURI         string // redirect_uri, required
	Scope               string // scope, space-separated
	State               string // state, echoed back
	CodeChallenge       string // code_challenge (PKCE)
	CodeChallengeMethod string // code_challenge_method; only S256
	Resource            string // resource (RFC 8707), required
}

// ParseAuthorizeRequest parses the query (or form) of an authorization
// request. The returned error is a *meta.Error. Errors that concern the
// client or redirect URI must be shown to the user, never redirected;
// ParseAuthorizeRequest fills ClientID and RedirectURI whenever they are
// well-formed so that the caller can decide.
func ParseAuthorizeRequest(raw string) (*AuthorizeRequest, error) {
	v, err := parseUniqueValues(raw)
	if err != nil {
		return nil, err
	}
	req := &AuthorizeRequest{
		ResponseType:        v["response_type"],
		ClientID:            v["client_id"],
		RedirectURI:         v["redirect_uri"],
		Scope:               v["scope"],
		State:               v["state"],
		CodeChallenge:       v["code_challenge"],
		CodeChallengeMethod: v["code_challenge_method"],
		Resource:            v["resource"],
	}
	if req.ClientID == "" {
		return req, errInvalidRequest("client_id is required")
	}
	if req.RedirectURI == "" {
		return req, errInvalidRequest("redirect_uri is required")
	}
	if err := checkRedirectURISyntax(req.RedirectURI); err != nil {
		return req, err
	}
	return req, nil
}

// checkRedirectURISyntax refuses redirect URIs that can never be valid:
// not absolute, with a fragment, or http to a non-loopback host.
func checkRedirectURISyntax(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" && u.Scheme == "http" || u.Scheme == "https" && u.Host == "" {
		return errInvalidRequest("redirect_uri %q is not an absolute URI", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errInvalidRequest("redirect_uri must not contain a fragment")
	}
	if strings.EqualFold(u.Scheme, "http") && !isLoopbackRedirectHost(u.Hostname()) {
		return errInvalidRequest("redirect_uri must use https unless it is a loopback address")
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "file", "vbscript":
		return errInvalidRequest("redirect_uri scheme %q is not allowed", u.Scheme)
	}
	return nil
}

func isLoopbackRedirectHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// TokenRequest is a parsed token endpoint request. Client credentials
// from the Authorization header are returned separately in BasicID and
// BasicSecret.
type TokenRequest struct {
	GrantType           string // grant_type
	Code                string // code (authorization_code)
	RedirectURI         string // redirect_uri (authorization_code)
	CodeVerifier        string // code_verifier (authorization_code)
	RefreshToken        string // refresh_token (refresh_token)
	Scope               string // scope
	Resource            string // resource (RFC 8707)
	Assertion           string // assertion (jwt-bearer)
	ClientID            string // client_id in the body
	ClientSecret        string // client_secret (client_secret_post)
	ClientAssertion     string // client_assertion (private_key_jwt)
	ClientAssertionType string // client_assertion_type (private_key_jwt)
	// HasBasic reports an Authorization: Basic header, whose decoded
	// client id and secret are BasicID and BasicSecret.
	HasBasic    bool
	BasicID     string
	BasicSecret string
}

// ParseTokenRequest parses a token request body and Authorization header.
// The returned error is a *meta.Error.
func ParseTokenRequest(body, authorization string) (*TokenRequest, error) {
	v, err := parseUniqueValues(body)
	if err != nil {
		return nil, err
	}
	req := &TokenRequest{
		GrantType:           v["grant_type"],
		Code:                v["code"],
		RedirectURI:         v["redirect_uri"],
		CodeVerifier:        v["code_verifier"],
		RefreshToken:        v["refresh_token"],
		Scope:               v["scope"],
		Resource:            v["resource"],
		Assertion:           v["assertion"],
		ClientID:            v["client_id"],
		ClientSecret:        v["client_secret"],
		ClientAssertion:     v["client_assertion"],
		ClientAssertionType: v["client_assertion_type"],
	}
	if authorization != "" {
		id, secret, err := parseBasic(authorization)
		if err != nil {
			return nil, err
		}
		req.HasBasic, req.BasicID, req.BasicSecret = true, id, secret
	}
	if req.GrantType == "" {
		return req, errInvalidRequest("grant_type is required")
	}
	return req, nil
}

// parseBasic decodes an RFC 6749 §2.3.1 Basic header: base64 of
// form-urlencoded id ":" form-urlencoded secret.
func parseBasic(h string) (id, secret string, err error) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", errInvalidClient("unsupported Authorization scheme; use Basic")
	}
	r := &http.Request{Header: http.Header{"Authorization": {"Basic " + strings.TrimSpace(rest)}}}
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return "", "", errInvalidClient("malformed Basic credentials")
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", errInvalidClient("malformed client id in Basic credentials")
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", errInvalidClient("malformed client secret in Basic credentials")
	}
	if id == "" || !utf8.ValidString(id) || !utf8.ValidString(secret) {
		return "", "", errInvalidClient("malformed Basic credentials")
	}
	return id, secret, nil
}

// sprintScopes joins scopes with single spaces.
func sprintScopes(s []string) string { return strings.Join(s, " ") }

// splitScope splits a scope parameter, refusing invalid characters
// (RFC 6749 §3.3).
func splitScope(s string) ([]string, error) {
	var out []string
	for f := range strings.FieldsSeq(s) {
		for i := 0; i < len(f); i++ {
			c := f[i]
			if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, errInvalidScope("scope %q contains an invalid character", f)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// CheckRedirectURI reports whether s can be registered as a redirect URI:
// absolute, no fragment, https or http on a loopback host.
func CheckRedirectURI(s string) error {
	if err := checkRedirectURISyntax(s); err != nil {
		return errors.New(asOAuthError(err).Description)
	}
	return nil
}
