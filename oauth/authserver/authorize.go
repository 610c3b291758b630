package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/internal/pwguard"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/principal"
	"github.com/mcpgate/mcpgate/store"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// authzRequest is a fully checked authorization request.
type authzRequest struct {
	raw      string
	req      *AuthorizeRequest
	client   *store.Client
	resource *Resource
	scopes   []string
}

// authzError is a refused authorization request. When redirect is set the
// error goes back to the client; otherwise it is shown to the user.
type authzError struct {
	err      *meta.Error
	redirect bool
	req      *AuthorizeRequest
}

// matchRedirectURI compares a requested redirect URI with the registered
// ones: exact string match, except that for loopback IP literals
// (127.0.0.1 and [::1], never the name localhost) any port is accepted
// (RFC 8252 §7.3).
func matchRedirectURI(registered []string, requested string) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	ru, err := url.Parse(requested)
	if err != nil || ru.Scheme != "http" {
		return false
	}
	h := ru.Hostname()
	if h != "127.0.0.1" && h != "::1" {
		return false
	}
	for _, reg := range registered {
		gu, err := url.Parse(reg)
		if err != nil || gu.Scheme != "http" || gu.Hostname() != h {
			continue
		}
		if gu.EscapedPath() == ru.EscapedPath() && gu.RawQuery == ru.RawQuery && gu.User == nil && ru.User == nil {
			return true
		}
	}
	return false
}

// checkAuthorize validates an authorization request from its raw query.
func (s *Server) checkAuthorize(ctx context.Context, raw string) (*authzRequest, *authzError) {
	req, perr := ParseAuthorizeRequest(raw)
	if req == nil || req.ClientID == "" || req.RedirectURI == "" {
		return nil, &authzError{err: asOAuthError(perr)}
	}
	client, err := s.getClient(ctx, req.ClientID)
	if err != nil {
		oe := asOAuthError(err)
		if oe.Code == meta.ErrInvalidClient {
			oe = &meta.Error{Code: oe.Code, Description: oe.Description, StatusCode: http.StatusBadRequest}
		}
		return nil, &authzError{err: oe}
	}
	if perr != nil {
		// The redirect URI is malformed: never redirect to it.
		return nil, &authzError{err: asOAuthError(perr)}
	}
	// A client the server does not admit is told so on the error page,
	// never by a redirect: its redirect URIs are not vouched for.
	if err := s.admitClient(client, meta.GrantTypeAuthorizationCode); err != nil {
		oe := asOAuthError(err)
		if client.Status == store.ClientRefused {
			oe = oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "%s", oe.Description)
		} else {
			oe = oauthErr(http.StatusForbidden, oe.Code, "%s", oe.Description)
		}
		return nil, &authzError{err: oe}
	}
	if !matchRedirectURI(client.RedirectURIs, req.RedirectURI) {
		return nil, &authzError{err: errInvalidRequest("redirect_uri %q is not registered for this client", req.RedirectURI)}
	}
	fail := func(e *meta.Error) (*authzRequest, *authzError) {
		return nil, &authzError{err: e, redirect: true, req: req}
	}
	if req.ResponseType != meta.ResponseTypeCode {
		return fail(oauthErr(http.StatusBadRequest, meta.ErrUnsupportedResponseType, "response_type must be code"))
	}
	if !clientMayUse(client, meta.GrantTypeAuthorizationCode) {
		return fail(errUnauthorizedClient("client is not allowed the authorization_code grant"))
	}
	if isPublic(client) && s.opts.DisablePublicClients {
		return fail(errUnauthorizedClient("public clients are not accepted by this server"))
	}
	if req.CodeChallenge == "" {
		return fail(errInvalidRequest("code_challenge is required (PKCE)"))
	}
	if req.CodeChallengeMethod != meta.CodeChallengeMethodS256 {
		return fail(errInvalidRequest("code_challenge_method must be S256"))
	}
	if len(req.CodeChallenge) != 43 || meta.ValidateCodeVerifier(req.CodeChallenge+"xxxxx") != nil || strings.ContainsAny(req.CodeChallenge, ".~") {
		return fail(errInvalidRequest("code_challenge must be a base64url SHA-256 digest (43 characters)"))
	}
	res, err := s.checkResource(req.Resource)
	if err != nil {
		return fail(asOAuthError(err))
	}
	scopes, err := s.grantScopes(res, client, req.Scope)
	if err != nil {
		return fail(asOAuthError(err))
	}
	return &authzRequest{raw: raw, req: req, client: client, resource: res, scopes: scopes}, nil
}

// capitalize upper-cases the first letter of an ASCII message.
func capitalize(msg string) string {
	if msg == "" || msg[0] < 'a' || msg[0] > 'z' {
		return msg
	}
	return string(msg[0]-'a'+'A') + msg[1:]
}

// redirectWith sends the user agent back to the client with parameters,
// adding state and the RFC 9207 iss.
func (s *Server) redirectWith(w http.ResponseWriter, r *http.Request, req *AuthorizeRequest, params url.Values) {
	u, _ := url.Parse(req.RedirectURI)
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// authorizeFailed shows or redirects an authorization error.
func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, ae *authzError) {
	s.log.DebugContext(r.Context(), "oauth: authorization refused", "error", ae.err.Code, "description", ae.err.Description)
	if ae.redirect {
		p := url.Values{"error": {ae.err.Code}}
		if ae.err.Description != "" {
			p.Set("error_description", ae.err.Description)
		}
		s.redirectWith(w, r, ae.req, p)
		return
	}
	s.errorPage(w, r, ae.err)
}

// errorPage shows an error to the user (JSON if the caller asks for it).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, e *meta.Error) {
	status := e.StatusCode
	if status == 0 {
		status = http.StatusBadRequest
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, status, e)
		return
	}
	s.render(w, status, "error.html", map[string]any{"Title": "Error", "Code": e.Code, "Description": e.Description})
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("oauth: rendering page", "page", name, "err", err)
	}
}

// rawAuthz returns the raw authorization request of a GET or POST.
func rawAuthz(r *http.Request) (string, *meta.Error) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.RawQuery, nil
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
		if err != nil || len(body) > maxFormBytes {
			return "", errInvalidRequest("request body too large")
		}
		return string(body), nil
	}
	return "", oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use GET or POST")
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	raw, perr := rawAuthz(r)
	if perr != nil {
		s.errorPage(w, r, perr)
		return
	}
	az, ae := s.checkAuthorize(r.Context(), raw)
	if ae != nil {
		s.authorizeFailed(w, r, ae)
		return
	}
	if s.opts.AutoApprove != nil {
		if sub, ok := s.opts.AutoApprove(r, az.client, az.scopes); ok && sub != "" {
			s.approve(w, r, az, sub, principal.Attributes{})
			return
		}
	}
	sess := s.currentSession(r)
	if sess == nil {
		s.loginPage(w, r, az, "", http.StatusOK)
		return
	}
	if err := s.refused(r.Context(), sess.subject, az.client.ID); err != nil {
		s.signOut(w, r)
		s.errorPage(w, r, err)
		return
	}
	s.consentPage(w, az, sess)
}

// refused asks Options.Admit whether subject may sign in to client and
// consent: a revoked user (or client) is refused at sign-in and at
// consent, before any code is issued, with the reason as the page's
// message ("this account has been revoked by an administrator").
func (s *Server) refused(ctx context.Context, subject, clientID string) *meta.Error {
	if s.opts.Admit == nil {
		return nil
	}
	if err := s.opts.Admit(ctx, subject, clientID); err != nil {
		s.log.InfoContext(ctx, "oauth: sign-in or consent refused", "sub", subject, "client_id", clientID, "reason", err)
		return oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "%v", err)
	}
	return nil
}

// signOut ends the browser's sign-in session, if any.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		_ = s.st.DeleteSession(r.Context(), store.Digest(c.Value))
	}
	s.setCookie(w, sessionCookie, "", -1)
}

// approve issues an authorization code and redirects to the client.
// attrs are what an identity provider asserted about the subject at
// sign-in; they travel with the code.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, az *authzRequest, subject string, attrs principal.Attributes) {
	if e := s.refused(r.Context(), subject, az.client.ID); e != nil {
		s.authorizeFailed(w, r, &authzError{err: e, redirect: true, req: az.req})
		return
	}
	code := meta.RandomToken(32)
	ac := &store.AuthCode{
		CodeHash: store.Digest(code), ClientID: az.client.ID, Subject: subject, RedirectURI: az.req.RedirectURI,
		CodeChallenge: az.req.CodeChallenge, Resource: az.resource.URI, Scope: sprintScopes(az.scopes),
		FamilyID: newFamilyID(), Claims: encodeAttributes(attrs), ExpiresAt: s.now().Add(s.opts.CodeTTL),
	}
	if err := s.st.CreateAuthCode(r.Context(), ac); err != nil {
		s.log.ErrorContext(r.Context(), "oauth: storing authorization code", "err", err)
		s.authorizeFailed(w, r, &authzError{err: errServer(err), redirect: true, req: az.req})
		return
	}
	s.log.InfoContext(r.Context(), "oauth: authorization approved", "client_id", az.client.ID, "sub", subject, "resource", az.resource.URI, "scope", ac.Scope)
	s.redirectWith(w, r, az.req, url.Values{"code": {code}})
}

// clientHost is what the consent page shows as the client's identity.
func clientHost(c *store.Client) string {
	if c.Kind == store.ClientMetadataDocument {
		if u, err := url.Parse(c.ID); err == nil {
			return u.Host
		}
	}
	return c.Kind + " client " + c.ID
}

func localhostOnly(c *store.Client) bool {
	if len(c.RedirectURIs) == 0 {
		return false
	}
	for _, ru := range c.RedirectURIs {
		u, err := url.Parse(ru)
		if err != nil || !isLoopbackRedirectHost(u.Hostname()) {
			return false
		}
	}
	return true
}

func clientName(c *store.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// Cookie names; the session cookie is host-only and scoped to the issuer
// path.
const (
	sessionCookie   = "mcpgate_session"
	loginCSRFCookie = "mcpgate_login_csrf"
)

func (s *Server) cookiePath() string { return s.basePath + "/" }

func (s *Server) secureCookies() bool { return s.issuerU.Scheme == "https" }

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: s.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
}

// currentSession returns the signed-in user's session, or nil.
func (s *Server) currentSession(r *http.Request) *sessionInfo {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	se, err := s.st.GetSession(r.Context(), store.Digest(c.Value), s.now())
	if err != nil || se.Kind != "user" || se.Subject == "" {
		return nil
	}
	attrs, err := decodeAttributes(se.Data)
	if err != nil {
		return nil
	}
	return &sessionInfo{token: c.Value, subject: se.Subject, attrs: attrs}
}

type sessionInfo struct {
	token   string
	subject string
	// attrs are what the identity provider asserted at sign-in.
	attrs principal.Attributes
}

// csrfFor derives the consent form's CSRF token from the session token
// (which only the user agent and the store digest know).
func csrfFor(sessionToken string) string {
	sum := sha256.Sum256([]byte("mcpgate consent csrf\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// startSession signs a user in; attrs are what an identity provider
// asserted at sign-in (none for local users).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, subject string, attrs principal.Attributes) error {
	tok := meta.RandomToken(32)
	if err := s.st.CreateSession(r.Context(), &store.Session{IDHash: store.Digest(tok), Kind: "user", Subject: subject, Data: encodeAttributes(attrs), ExpiresAt: s.now().Add(s.opts.SessionTTL)}); err != nil {
		return err
	}
	s.setCookie(w, sessionCookie, tok, int(s.opts.SessionTTL.Seconds()))
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, az *authzRequest, msg string, status int) {
	csrf := meta.RandomToken(24)
	s.setCookie(w, loginCSRFCookie, csrf, 1800)
	data := map[string]any{
		"Title": "Sign in", "ClientName": clientName(az.client), "ClientHost": clientHost(az.client), "Resource": az.resource.URI,
		"Authz": az.raw, "CSRF": csrf, "LoginURL": s.endpoint("/login"), "Error": msg, "LocalLogin": !s.opts.DisableLocalLogin,
	}
	if s.oidc != nil {
		data["OIDCURL"] = s.endpoint("/login/oidc")
		data["OIDCName"] = s.oidc.displayName
	}
	s.render(w, status, "login.html", data)
}

func (s *Server) consentPage(w http.ResponseWriter, az *authzRequest, sess *sessionInfo) {
	ru, _ := url.Parse(az.req.RedirectURI)
	s.render(w, http.StatusOK, "consent.html", map[string]any{
		"Title": "Allow access", "Subject": sess.subject, "ClientName": clientName(az.client), "ClientHost": clientHost(az.client),
		"RedirectHost": ru.Host, "Resource": az.resource.URI, "Scopes": az.scopes, "LocalhostOnly": localhostOnly(az.client),
		"Authz": az.raw, "CSRF": csrfFor(sess.token), "ConsentURL": s.endpoint("/consent"),
	})
}

// handleLogin checks a local user's password, then continues the
// authorization request.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.errorPage(w, r, asOAuthError(err))
		return
	}
	if _, ok := form["authz"]; !ok && form["next"] != "" {
		s.signInLogin(w, r, form)
		return
	}
	az, ae := s.checkAuthorize(r.Context(), form["authz"])
	if ae != nil {
		s.authorizeFailed(w, r, ae)
		return
	}
	page := func(msg string, status int) { s.loginPage(w, r, az, msg, status) }
	if !s.passwordSignIn(w, r, form, az.client.ID, page) {
		return
	}
	s.setCookie(w, loginCSRFCookie, "", -1)
	http.Redirect(w, r, s.endpoint("/authorize")+"?"+az.raw, http.StatusSeeOther)
}

// passwordSignIn checks a sign-in form (its CSRF token, the password
// through Options.PasswordGuard, the user's admission for clientID) and
// starts the user's session. When it cannot, it answers the request, the
// form's problems through page, and reports false.
func (s *Server) passwordSignIn(w http.ResponseWriter, r *http.Request, form map[string]string, clientID string, page func(msg string, status int)) bool {
	c, cerr := r.Cookie(loginCSRFCookie)
	if cerr != nil || form["csrf"] == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(form["csrf"])) != 1 {
		page("Your sign-in form expired. Please try again.", http.StatusForbidden)
		return false
	}
	if s.opts.DisableLocalLogin {
		s.errorPage(w, r, errInvalidRequest("local sign-in is disabled"))
		return false
	}
	username := form["username"]
	ok, err := s.opts.PasswordGuard.Check(r.Context(), username, remoteIP(r), func() (bool, error) {
		return s.checkPassword(r.Context(), username, form["password"])
	})
	if refused := (*pwguard.RefusedError)(nil); errors.As(err, &refused) {
		// Too many failures for the name or the address (429), or too
		// many password checks running (503).
		s.log.WarnContext(r.Context(), "oauth: sign-in refused", "username", username, "reason", refused.Reason)
		w.Header().Set("Retry-After", strconv.Itoa(refused.RetryAfterSeconds()))
		page("Sign-in refused: "+refused.Reason+".", refused.Status)
		return false
	}
	if err != nil {
		s.errorPage(w, r, errServer(err))
		return false
	}
	if !ok {
		s.log.InfoContext(r.Context(), "oauth: failed sign-in", "username", username)
		page("Unknown username or wrong password.", http.StatusUnauthorized)
		return false
	}
	if e := s.refused(r.Context(), username, clientID); e != nil {
		page(capitalize(e.Description)+".", http.StatusForbidden)
		return false
	}
	if err := s.startSession(w, r, username, principal.Attributes{}); err != nil {
		s.errorPage(w, r, errServer(err))
		return false
	}
	return true
}

func (s *Server) checkPassword(ctx context.Context, username, password string) (bool, error) {
	if username == "" || password == "" {
		return false, nil
	}
	u, err := s.st.GetUser(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same work as for a real user, so that response
		// times do not reveal which usernames exist.
		_, _ = VerifyPassword(password, s.dummyPasswordHash())
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return VerifyPassword(password, u.PasswordHash)
}

// handleConsent records the user's decision.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.errorPage(w, r, asOAuthError(err))
		return
	}
	sess := s.currentSession(r)
	if sess == nil {
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "not signed in; start the authorization again"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(form["csrf"]), []byte(csrfFor(sess.token))) != 1 {
		s.errorPage(w, r, oauthErr(http.StatusForbidden, meta.ErrAccessDenied, "the consent form is not valid for this session"))
		return
	}
	az, ae := s.checkAuthorize(r.Context(), form["authz"])
	if ae != nil {
		s.authorizeFailed(w, r, ae)
		return
	}
	switch form["action"] {
	case "approve":
		if e := s.refused(r.Context(), sess.subject, az.client.ID); e != nil {
			s.signOut(w, r)
			s.errorPage(w, r, e)
			return
		}
		s.approve(w, r, az, sess.subject, sess.attrs)
	case "deny":
		s.authorizeFailed(w, r, &authzError{err: oauthErr(http.StatusBadRequest, meta.ErrAccessDenied, "the user denied access"), redirect: true, req: az.req})
	default:
		s.errorPage(w, r, errInvalidRequest("action must be approve or deny"))
	}
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.errorPage(w, r, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use POST"))
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		_ = s.st.DeleteSession(r.Context(), store.Digest(c.Value))
	}
	s.setCookie(w, sessionCookie, "", -1)
	w.WriteHeader(http.StatusNoContent)
}

// newFamilyID returns a new grant (refresh token family) id: 16 random
// bytes, base64url, never starting with '-', so that an administrator can
// name it on the command line (`mcpgate revoke grant ID`) without it being
// read as a flag.
func newFamilyID() string {
	for {
		if id := meta.RandomToken(16); id[0] != '-' {
			return id
		}
	}
}
