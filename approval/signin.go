package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Browser sign-in. An approval link opened in a browser without
// credentials is redirected to a sign-in page (the built-in
// authorization server's, with the same local password or OIDC sign-in
// as its own form), which returns to the link with a one-time ticket.
// The pages redeem the ticket and keep the approver signed in with a
// session cookie scoped to the pages' path: HttpOnly, SameSite=Lax,
// Secure over https, valid for SessionTTL and signed with a key that
// lives as long as the Service, so it names the approver and cannot be
// forged or moved to another identity. Every request still checks that
// the identity is a configured approver.

// DefaultSessionTTL is how long a browser sign-in to the approval pages
// lasts.
const DefaultSessionTTL = 30 * time.Minute

// BrowserSignIn is a sign-in page that sends the browser back with a
// ticket; *authserver.Server implements it.
type BrowserSignIn interface {
	// SignInURL returns the address of the sign-in page that returns the
	// browser to next (a path on the same host) with a one-time ticket in
	// the query parameter named by TicketParam.
	SignInURL(next string) string
	// RedeemSignIn returns the identity a ticket was issued to; a ticket
	// can be redeemed once.
	RedeemSignIn(ctx context.Context, ticket string) (string, error)
}

// SignInOptions configures browser sign-in to the approval pages.
type SignInOptions struct {
	// SignIn is the sign-in page. Required.
	SignIn BrowserSignIn
	// TicketParam is the query parameter that carries the ticket back
	// (authserver.SignInTicketParam). Required.
	TicketParam string
	// MayApprove reports whether a signed-in identity is a configured
	// approver; it is asked on every request. Required.
	MayApprove func(identity string) bool
	// SessionTTL is how long a sign-in lasts; DefaultSessionTTL if zero
	// or negative.
	SessionTTL time.Duration
	// SignOutURL, if set, is the sign-in page's own sign-out endpoint
	// (POST; the authorization server's <issuer>/logout), offered after
	// signing out of the pages so the browser can end that sign-in too.
	SignOutURL string
}

type browserSignIn struct {
	SignInOptions
	cookie *SessionCookie
}

// SetBrowserSignIn enables browser sign-in to the pages. Call it before
// Handler serves requests.
func (s *Service) SetBrowserSignIn(o SignInOptions) error {
	if o.SignIn == nil || o.TicketParam == "" || o.MayApprove == nil {
		return errors.New("approval: browser sign-in needs SignIn, TicketParam and MayApprove")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	name := "mcpgate-approval-session"
	if s.secure {
		// __Host- would need Path=/; the cookie is scoped to the pages'
		// path.
		name = "__Secure-" + name
	}
	s.browser = &browserSignIn{SignInOptions: o, cookie: NewSessionCookie(SessionCookieOptions{
		Name: name, Path: s.basePath + "/", Secure: s.secure, TTL: o.SessionTTL, Purpose: "mcpgate approval session", Now: s.now,
	})}
	return nil
}

// sessionCookie returns the name of the sign-in cookie: __Secure-
// prefixed over https.
func (s *Service) sessionCookie() string { return s.browser.cookie.opts.Name }

// setSession signs who in on the browser of w.
func (s *Service) setSession(w http.ResponseWriter, who string) { s.browser.cookie.Set(w, who) }

// sessionApprover returns the approver signed in by the request's
// session cookie, if it is valid, unexpired and names an approver.
func (s *Service) sessionApprover(r *http.Request) (string, bool) {
	b := s.browser
	if b == nil {
		return "", false
	}
	who, ok := b.cookie.Identity(r)
	if !ok || !b.MayApprove(who) {
		return "", false
	}
	return who, true
}

// SessionCookieOptions configure a SessionCookie.
type SessionCookieOptions struct {
	// Name is the cookie's name. Required.
	Name string
	// Path is the path the cookie is sent to, e.g. "/approvals/".
	// Required.
	Path string
	// Secure marks the cookie Secure (pages served over https).
	Secure bool
	// TTL is how long a sign-in lasts; DefaultSessionTTL if zero or
	// negative.
	TTL time.Duration
	// Purpose separates the signatures of different cookies made with
	// the same kind of key; it is signed with every value.
	Purpose string
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Key, if at least 32 bytes, signs the cookies instead of a random
	// key made by NewSessionCookie, so that sign-ins survive a restart of
	// the process (the caller keeps the key, e.g. in a 0600 file).
	Key []byte
}

// SessionCookie is a browser sign-in kept in a cookie: the identity and
// an expiry, signed (HMAC-SHA256) with a random key that lives as long as
// the SessionCookie (or with SessionCookieOptions.Key), so it cannot be
// forged or moved to another identity, and ends when the process does
// unless the key is kept. The cookie is HttpOnly, SameSite=Lax,
// Secure when configured, and scoped to one path. The approval pages and
// the web console (package console) each keep their sign-in in one.
type SessionCookie struct {
	opts SessionCookieOptions
	key  []byte
}

// maxSessionCookie bounds the size of a session cookie value accepted.
const maxSessionCookie = 4096

// NewSessionCookie returns a SessionCookie with a new random key.
func NewSessionCookie(o SessionCookieOptions) *SessionCookie {
	if o.TTL <= 0 {
		o.TTL = DefaultSessionTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &SessionCookie{opts: o, key: make([]byte, 32)}
	if len(o.Key) >= 32 {
		c.key = bytes.Clone(o.Key)
	} else {
		rand.Read(c.key)
	}
	return c
}

// Name returns the cookie's name.
func (c *SessionCookie) Name() string { return c.opts.Name }

// sign returns the MAC of a cookie's payload.
func (c *SessionCookie) sign(payload string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(c.opts.Purpose + "\x00" + payload))
	return m.Sum(nil)
}

// Set signs who in on the browser of w.
func (c *SessionCookie) Set(w http.ResponseWriter, who string) {
	exp := c.opts.Now().Add(c.opts.TTL).Unix()
	payload := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(exp, 10) + "\x00" + who))
	http.SetCookie(w, &http.Cookie{
		Name: c.opts.Name, Value: payload + "." + base64.RawURLEncoding.EncodeToString(c.sign(payload)),
		Path: c.opts.Path, MaxAge: int(c.opts.TTL.Seconds()),
		HttpOnly: true, Secure: c.opts.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// Clear signs the browser of w out: it tells the browser to drop the
// cookie. (A copy of the cookie kept elsewhere stays valid until it
// expires: the value is signed, not stored.)
func (c *SessionCookie) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.opts.Name, Value: "", Path: c.opts.Path, MaxAge: -1,
		HttpOnly: true, Secure: c.opts.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// Identity returns the identity signed in by the request's cookie, if
// the cookie is genuine and unexpired.
func (c *SessionCookie) Identity(r *http.Request) (string, bool) {
	ck, err := r.Cookie(c.opts.Name)
	if err != nil || len(ck.Value) > maxSessionCookie {
		return "", false
	}
	payload, mac, ok := strings.Cut(ck.Value, ".")
	if !ok {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, c.sign(payload)) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	expText, who, ok := strings.Cut(string(raw), "\x00")
	exp, err := strconv.ParseInt(expText, 10, 64)
	if !ok || err != nil || who == "" || c.opts.Now().Unix() >= exp {
		return "", false
	}
	return who, true
}

// RedeemTicket redeems the sign-in ticket carried by r in the query
// parameter param, if there is one: has reports whether r carries one,
// who is the identity it was issued to, and rest is r's query without it
// (where the page should redirect the browser once signed in).
func RedeemTicket(si BrowserSignIn, param string, r *http.Request) (who string, rest url.Values, has bool, err error) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || !q.Has(param) {
		return "", nil, false, nil
	}
	ticket := q.Get(param)
	q.Del(param)
	who, err = si.RedeemSignIn(r.Context(), ticket)
	return who, q, true, err
}

// redeemTicket handles a request that returns from the sign-in page with
// a ticket: it signs the approver in and redirects to the same page
// without the ticket. It reports whether it answered the request.
func (s *Service) redeemTicket(w http.ResponseWriter, r *http.Request) bool {
	b := s.browser
	if b == nil {
		return false
	}
	who, q, has, err := RedeemTicket(b.SignIn, b.TicketParam, r)
	if !has {
		return false
	}
	if err != nil {
		s.log.InfoContext(r.Context(), "approval pages: sign-in ticket refused", "error", err)
		s.page(w, http.StatusUnauthorized, "Sign-in expired", "This sign-in link is no longer valid. Open the approval link again to sign in.", "")
		return true
	}
	if !b.MayApprove(who) {
		s.log.WarnContext(r.Context(), "approval pages: signed-in user is not an approver", "user", who)
		s.page(w, http.StatusForbidden, "Not an approver", "You are signed in as "+visible(who)+", who is not a configured approver.", "")
		return true
	}
	s.setSession(w, who)
	u := url.URL{Path: s.basePath + r.URL.Path, RawQuery: q.Encode()}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return true
}

// fromBrowser reports whether the request comes from a browser (it
// accepts HTML pages).
func fromBrowser(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// basicRealm is the WWW-Authenticate challenge of the pages.
const basicRealm = `Basic realm="mcpgate approvals", charset="UTF-8"`

// unauthenticated answers a request without valid credentials: a
// browser is sent to the sign-in page when there is one (a form posted
// after the sign-in expired gets a page linking to it, since the
// decision must be made again on a fresh page); anything else gets 401
// with a Basic challenge (scripts sign in with Basic auth).
func (s *Service) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if b := s.browser; b != nil && fromBrowser(r) {
		next := url.URL{Path: s.basePath + r.URL.Path}
		if r.Method == http.MethodGet {
			next.RawQuery = r.URL.RawQuery
			http.Redirect(w, r, b.SignIn.SignInURL(next.String()), http.StatusSeeOther)
			return
		}
		s.page(w, http.StatusUnauthorized, "Sign-in expired", "Your sign-in expired before the decision was sent, so nothing was recorded. Sign in again and repeat your decision.", b.SignIn.SignInURL(next.String()))
		return
	}
	w.Header().Set("WWW-Authenticate", basicRealm)
	s.page(w, http.StatusUnauthorized, "Sign-in required", "Sign in as an approver to see approval requests.", "")
}

// signOutPath is the path, under the pages' base path, that signs a
// browser out (POST with the CSRF token).
const signOutPath = "/signout"

// signOutLink returns the action of the sign-out form, or "" when the
// pages have no browser sign-in.
func (s *Service) signOutLink() string {
	if s.browser == nil {
		return ""
	}
	return s.basePath + signOutPath
}

// serveSignOut signs the browser out of the pages: POST /signout with
// the CSRF token, answered with a page that offers to end the sign-in
// of the authorization server too.
func (s *Service) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if s.browser == nil {
		s.page(w, http.StatusNotFound, "Not found", "There is no browser sign-in to sign out of.", "")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.page(w, http.StatusMethodNotAllowed, "Sign out", "Signing out needs the sign-out button of an approval page.", s.listLink())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "Bad request", "The sign-out form could not be read: "+err.Error(), s.listLink())
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.log.WarnContext(r.Context(), "approval pages: sign-out refused by CSRF check", "reason", err.Error())
		s.page(w, http.StatusForbidden, "Sign-out refused", "This form could not be verified as coming from the approval pages. Open the approval pages again and sign out from there.", s.listLink())
		return
	}
	s.browser.cookie.Clear(w)
	s.render(w, http.StatusOK, "signedout", map[string]any{"Title": "Signed out", "SignOutURL": s.browser.SignOutURL})
}
