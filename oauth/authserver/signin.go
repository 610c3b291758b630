package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// Browser sign-in for the gateway's other pages (the approval pages).
// Their cookies cannot see the sign-in session, which is scoped to the
// issuer path, so GET <issuer>/signin?next=PATH signs the user in with
// the same form (local password or the OIDC provider) and sends the
// browser back to PATH with a one-time ticket in the query parameter
// SignInTicketParam. The page redeems the ticket, in-process, with
// RedeemSignIn. PATH must start with one of Options.SignInReturns.

const (
	// SignInTicketParam is the query parameter that carries a sign-in
	// ticket back to the page that asked for it.
	SignInTicketParam = "signin_ticket"
	// SignInTicketTTL is how long a sign-in ticket can be redeemed.
	SignInTicketTTL = time.Minute
	// signInTicketKind is the store.Session kind of a sign-in ticket.
	signInTicketKind = "signin-ticket"
)

// ErrSignInTicket is the error of a sign-in ticket that is unknown,
// expired or already used.
var ErrSignInTicket = errors.New("sign-in ticket is unknown, expired or already used")

// SignInURL returns the address of the browser sign-in page that returns
// to next, a path on the issuer's host under one of
// Options.SignInReturns.
func (s *Server) SignInURL(next string) string {
	return s.endpoint("/signin") + "?" + url.Values{"next": {next}}.Encode()
}

// RedeemSignIn returns the subject a sign-in ticket was issued to. A
// ticket can be redeemed once, within SignInTicketTTL.
func (s *Server) RedeemSignIn(ctx context.Context, ticket string) (string, error) {
	who, _, err := s.RedeemSignInGroups(ctx, ticket)
	return who, err
}

// RedeemSignInGroups is RedeemSignIn that also returns the groups the
// identity provider asserted when the user signed in through OIDC (the
// groups claim, ClaimMapping); nil for a local user, whose groups are in
// the store.
func (s *Server) RedeemSignInGroups(ctx context.Context, ticket string) (string, []string, error) {
	if ticket == "" || len(ticket) > 256 {
		return "", nil, ErrSignInTicket
	}
	id := store.Digest(ticket)
	se, err := s.st.GetSession(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, ErrSignInTicket
	}
	if err != nil {
		return "", nil, err
	}
	if se.Kind != signInTicketKind || se.Subject == "" {
		return "", nil, ErrSignInTicket
	}
	if err := s.st.DeleteSession(ctx, id); err != nil {
		return "", nil, err
	}
	attrs, err := decodeAttributes(se.Data)
	if err != nil {
		return "", nil, err
	}
	return se.Subject, attrs.Groups, nil
}

// signInReturnAllowed reports whether next is a path the sign-in may
// return to: an absolute path without host, dot segments or
// backslashes, under one of Options.SignInReturns.
func (s *Server) signInReturnAllowed(next string) bool {
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return false
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Fragment != "" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, p := range s.opts.SignInReturns {
		if p != "" && strings.HasPrefix(u.Path, p) {
			return true
		}
	}
	return false
}

// handleSignIn answers GET <issuer>/signin?next=PATH: the sign-in form
// when the browser is not signed in, else a redirect to PATH with a
// ticket.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.errorPage(w, r, oauthErr(http.StatusMethodNotAllowed, meta.ErrInvalidRequest, "use GET"))
		return
	}
	next := r.URL.Query().Get("next")
	if !s.signInReturnAllowed(next) {
		s.errorPage(w, r, errInvalidRequest("next is not a sign-in return path of this server"))
		return
	}
	sess := s.currentSession(r)
	if sess == nil {
		s.signInPage(w, next, "", http.StatusOK)
		return
	}
	if e := s.refused(r.Context(), sess.subject, ""); e != nil {
		s.signOut(w, r)
		s.errorPage(w, r, e)
		return
	}
	ticket := meta.RandomToken(32)
	if err := s.st.CreateSession(r.Context(), &store.Session{IDHash: store.Digest(ticket), Kind: signInTicketKind, Subject: sess.subject, Data: encodeAttributes(sess.attrs), ExpiresAt: s.now().Add(SignInTicketTTL)}); err != nil {
		s.errorPage(w, r, errServer(err))
		return
	}
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, next+sep+SignInTicketParam+"="+url.QueryEscape(ticket), http.StatusSeeOther)
}

// signInPage shows the sign-in form of a browser sign-in.
func (s *Server) signInPage(w http.ResponseWriter, next, msg string, status int) {
	csrf := meta.RandomToken(24)
	s.setCookie(w, loginCSRFCookie, csrf, 1800)
	data := map[string]any{
		"Title": "Sign in", "Next": next, "CSRF": csrf, "LoginURL": s.endpoint("/login"), "Error": msg, "LocalLogin": !s.opts.DisableLocalLogin,
	}
	if s.oidc != nil {
		data["OIDCURL"] = s.endpoint("/login/oidc")
		data["OIDCName"] = s.oidc.displayName
	}
	s.render(w, status, "login.html", data)
}

// signInLogin checks a local user's password posted by the form of a
// browser sign-in, then continues at the sign-in endpoint, which issues
// the ticket.
func (s *Server) signInLogin(w http.ResponseWriter, r *http.Request, form map[string]string) {
	next := form["next"]
	if !s.signInReturnAllowed(next) {
		s.errorPage(w, r, errInvalidRequest("next is not a sign-in return path of this server"))
		return
	}
	page := func(msg string, status int) { s.signInPage(w, next, msg, status) }
	if !s.passwordSignIn(w, r, form, "", page) {
		return
	}
	s.setCookie(w, loginCSRFCookie, "", -1)
	http.Redirect(w, r, s.SignInURL(next), http.StatusSeeOther)
}
