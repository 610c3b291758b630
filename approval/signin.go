package approval

import (
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
}

type browserSignIn struct {
	SignInOptions
	key []byte
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
	b := &browserSignIn{SignInOptions: o, key: make([]byte, 32)}
	rand.Read(b.key)
	s.browser = b
	return nil
}

// sessionCookie returns the name of the sign-in cookie: __Secure-
// prefixed over https. (__Host- would need Path=/; the cookie is scoped
// to the pages' path.)
func (s *Service) sessionCookie() string {
	if s.secure {
		return "__Secure-mcpgate-approval-session"
	}
	return "mcpgate-approval-session"
}

// sessionPath is the path the sign-in cookie is sent to.
func (s *Service) sessionPath() string { return s.basePath + "/" }

// sign returns the MAC of a session cookie's payload.
func (b *browserSignIn) sign(payload string) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte("mcpgate approval session\x00" + payload))
	return m.Sum(nil)
}

// setSession signs who in on the browser of w.
func (s *Service) setSession(w http.ResponseWriter, who string) {
	b := s.browser
	exp := s.now().Add(b.SessionTTL).Unix()
	payload := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(exp, 10) + "\x00" + who))
	http.SetCookie(w, &http.Cookie{
		Name: s.sessionCookie(), Value: payload + "." + base64.RawURLEncoding.EncodeToString(b.sign(payload)),
		Path: s.sessionPath(), MaxAge: int(b.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode,
	})
}

// sessionApprover returns the approver signed in by the request's
// session cookie, if it is valid, unexpired and names an approver.
func (s *Service) sessionApprover(r *http.Request) (string, bool) {
	b := s.browser
	if b == nil {
		return "", false
	}
	c, err := r.Cookie(s.sessionCookie())
	if err != nil || len(c.Value) > 4096 {
		return "", false
	}
	payload, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, b.sign(payload)) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	expText, who, ok := strings.Cut(string(raw), "\x00")
	exp, err := strconv.ParseInt(expText, 10, 64)
	if !ok || err != nil || who == "" || s.now().Unix() >= exp {
		return "", false
	}
	if !b.MayApprove(who) {
		return "", false
	}
	return who, true
}

// redeemTicket handles a request that returns from the sign-in page with
// a ticket: it signs the approver in and redirects to the same page
// without the ticket. It reports whether it answered the request.
func (s *Service) redeemTicket(w http.ResponseWriter, r *http.Request) bool {
	b := s.browser
	if b == nil || r.Method != http.MethodGet || !r.URL.Query().Has(b.TicketParam) {
		return false
	}
	q := r.URL.Query()
	ticket := q.Get(b.TicketParam)
	q.Del(b.TicketParam)
	who, err := b.SignIn.RedeemSignIn(r.Context(), ticket)
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
