// Package console is mcpgate's web console and its JSON API, served by
// the gateway at /console/ (docs/console.md).
//
// The console is a face: it shows and acts on the controls the gateway
// already has (the inventory and its revoker, the audit log, the policy
// engine, the approval service) through the same functions the command
// line uses, and records every act in the audit log with the command
// line's action names. Nothing here sits on the path of an MCP request:
// the gateway only mounts Handler next to /mcp.
//
// Users sign in through the built-in authorization server's browser
// sign-in (the one-time ticket of approval.BrowserSignIn) and are kept
// signed in by an approval.SessionCookie scoped to the console's path.
// Their role comes from the configuration (config.Config.ConsoleRole):
// viewers read, approvers also decide approvals, administrators also
// revoke, reinstate and approve or refuse clients and tools. Every
// state-changing request must carry the session's CSRF token in the
// X-CSRF-Token header, pass Go's cross-origin protection (Sec-Fetch-Site
// and Origin) and send JSON.
//
// # Files
//
//   - console.go: [Options], [New], [Console.Handler], sign-in, roles,
//     CSRF, JSON answers.
//   - api.go: the handlers of /console/api/.
//   - auditscan.go: searching the audit log, per-minute counts.
//   - assets/: the pages (HTML, CSS and JavaScript without a build step),
//     embedded.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/approval"
	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/store"
)

//go:embed assets
var assets embed.FS

// Roles, from the least to the most allowed (config.Role*).
const (
	RoleViewer        = config.RoleViewer
	RoleApprover      = config.RoleApprover
	RoleAdministrator = config.RoleAdministrator
)

// ClientName is the Client of every audit record the console writes.
const ClientName = "mcpgate-console"

// Audit actions of the console's own acts; acts the command line also
// does are recorded with its action names (cliaudit.Action*).
const (
	ActionSignedIn      = "console.signed_in"
	ActionSignedOut     = "console.signed_out"
	ActionRefused       = "console.refused"
	ActionAuditVerified = "console.audit.verified"
)

// DefaultSessionTTL is how long a console sign-in lasts.
const DefaultSessionTTL = 30 * time.Minute

// maxBodyBytes bounds the body of an API request.
const maxBodyBytes = 64 << 10

// csrfHeader is the header that carries the session's CSRF token.
const csrfHeader = "X-CSRF-Token"

// Options configure a Console. SignIn, TicketParam and Role are
// required; every control may be nil, and the pages and API that need
// it then say it is not configured.
type Options struct {
	// BaseURL is the external URL the console is mounted at, e.g.
	// "https://gw.example.com/console". Its path scopes the session
	// cookie; an https URL makes it Secure; its origin is trusted by the
	// cross-origin check. Required.
	BaseURL string
	// SignIn is the browser sign-in (the authorization server), and
	// TicketParam the query parameter of its tickets. SignOutURL, if set,
	// is its sign-out endpoint (POST), which the pages call after
	// signing out of the console.
	SignIn      approval.BrowserSignIn
	TicketParam string
	SignOutURL  string
	// SessionTTL is how long a sign-in lasts; DefaultSessionTTL if zero.
	SessionTTL time.Duration
	// Role returns a user's role (RoleViewer, RoleApprover,
	// RoleAdministrator) or "" for none; asked on every request. groups
	// are the groups the identity provider asserted when the user signed
	// in (SignIn implementing GroupsSignIn, for OIDC users), kept in the
	// session for the roles they give; nil for local users.
	Role func(ctx context.Context, user string, groups []string) string
	// SessionKey, if at least 32 bytes, signs the session cookies and
	// derives the CSRF tokens, so that sign-ins survive a restart (and
	// hold on every replica that has the same key); otherwise a random
	// key made by New is used and every restart signs everyone out.
	SessionKey []byte

	// Store is the identity store (clients' admission status, live
	// tokens); Inventory the identity graph; Revoker the gateway's
	// revoker (revocations take effect in this process at once).
	Store     store.Store
	Inventory *inventory.Inventory
	Revoker   *inventory.Revoker
	// Audit is the audit log the console records its acts in, and
	// AuditStore the store it reads and verifies.
	Audit      *audit.Log
	AuditStore store.AuditLog
	// Policy is the engine in force, PolicyPaths where it loads from.
	Policy      *policy.Engine
	PolicyPaths []string
	// Approvals is the approval service.
	Approvals *approval.Service

	// Logger receives the console's log; discarded if nil.
	Logger *slog.Logger
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

// Console serves the web console and its API.
type Console struct {
	opts     Options
	basePath string // without trailing slash
	secure   bool
	session  *approval.SessionCookie
	csrfKey  []byte
	cop      *http.CrossOriginProtection
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Console.
func New(opts *Options) (*Console, error) {
	if opts == nil || opts.SignIn == nil || opts.TicketParam == "" || opts.Role == nil || opts.BaseURL == "" {
		return nil, errors.New("console: needs BaseURL, SignIn, TicketParam and Role")
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("console: BaseURL must be an absolute URL")
	}
	c := &Console{opts: *opts, basePath: strings.TrimRight(u.Path, "/"), secure: u.Scheme == "https",
		cop: http.NewCrossOriginProtection(), log: opts.Logger, now: opts.Now}
	root := opts.SessionKey
	if len(root) < 32 {
		root = make([]byte, 32)
		rand.Read(root)
	}
	c.csrfKey = deriveKey(root, "csrf")
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	// Behind a proxy that rewrites Host, the external origin is the one
	// to trust.
	if err := c.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
		return nil, err
	}
	if c.opts.SessionTTL <= 0 {
		c.opts.SessionTTL = DefaultSessionTTL
	}
	name := "mcpgate-console-session"
	if c.secure {
		name = "__Secure-" + name
	}
	c.session = approval.NewSessionCookie(approval.SessionCookieOptions{
		Name: name, Path: c.basePath + "/", Secure: c.secure, TTL: c.opts.SessionTTL,
		Purpose: "mcpgate console session", Now: c.now, Key: deriveKey(root, "session"),
	})
	return c, nil
}

// deriveKey derives the key for one use from the console's session key.
func deriveKey(root []byte, use string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("mcpgate console key\x00" + use))
	return m.Sum(nil)
}

// GroupsSignIn is a browser sign-in that also tells the groups the
// identity provider asserted at sign-in (authserver.Server does, for
// users who signed in through OIDC): the console keeps them in the
// session and passes them to Options.Role, so that "group:NAME" entries
// name those users too.
type GroupsSignIn interface {
	approval.BrowserSignIn
	RedeemSignInGroups(ctx context.Context, ticket string) (who string, groups []string, err error)
}

// sessionIdentity is what the session cookie keeps: the user, and the
// groups of the sign-in that give a role (sessionGroups).
type sessionIdentity struct {
	User   string   `json:"u"`
	Groups []string `json:"g,omitempty"`
}

// maxSessionGroupBytes bounds the groups kept in a session cookie (the
// cookie holds at most 4 KiB).
const maxSessionGroupBytes = 2048

// sessionGroups returns the groups of a sign-in worth keeping: those
// that give who a role higher than without them; if they do not fit in
// maxSessionGroupBytes, the one that gives the highest role.
func (c *Console) sessionGroups(ctx context.Context, who string, groups []string) []string {
	base := rank(c.opts.Role(ctx, who, nil))
	var keep []string
	best, bestRank, size := "", base, 0
	for _, g := range groups {
		r := rank(c.opts.Role(ctx, who, []string{g}))
		if r <= base {
			continue
		}
		keep = append(keep, g)
		size += len(g) + 3
		if r > bestRank {
			best, bestRank = g, r
		}
	}
	if size > maxSessionGroupBytes && len(best) <= maxSessionGroupBytes {
		return []string{best}
	}
	if size > maxSessionGroupBytes {
		return nil
	}
	return keep
}

// setSession signs who in with the groups that give a role.
func (c *Console) setSession(w http.ResponseWriter, who string, groups []string) {
	b, _ := json.Marshal(sessionIdentity{User: who, Groups: groups})
	c.session.Set(w, string(b))
}

// sessionOf returns the user and groups of the request's session.
func (c *Console) sessionOf(r *http.Request) (who string, groups []string, ok bool) {
	raw, ok := c.session.Identity(r)
	if !ok {
		return "", nil, false
	}
	var id sessionIdentity
	if err := json.Unmarshal([]byte(raw), &id); err != nil || id.User == "" {
		return "", nil, false
	}
	return id.User, id.Groups, true
}

type userKey struct{}

// user is the signed-in user of a request and their role.
type user struct {
	Name string `json:"user"`
	Role string `json:"role"`
	// csrf is the session's CSRF token.
	csrf string
}

func userOf(ctx context.Context) *user {
	u, _ := ctx.Value(userKey{}).(*user)
	return u
}

// Handler returns the console, to be mounted at the path of
// Options.BaseURL with that prefix stripped:
//
//	mux.Handle("/console/", http.StripPrefix("/console", c.Handler()))
//
// GET / and the assets need no sign-in to load (the page asks
// /api/me); every /api/ request does.
func (c *Console) Handler() http.Handler {
	api := http.NewServeMux()
	c.routes(api)
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		if c.redeemTicket(w, r) {
			return
		}
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/api/"):
			c.serveAPI(api, w, r)
		case p == "/" || p == "":
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				c.fail(w, http.StatusMethodNotAllowed, "use GET")
				return
			}
			if _, ok := c.signedIn(r); !ok {
				// Straight to the sign-in page, which returns here.
				http.Redirect(w, r, c.opts.SignIn.SignInURL(c.basePath+"/"), http.StatusSeeOther)
				return
			}
			serveIndex(w, r)
		case strings.HasPrefix(p, "/assets/"):
			r2 := new(http.Request)
			*r2 = *r
			r2.URL = &url.URL{Path: strings.TrimPrefix(p, "/assets")}
			files.ServeHTTP(w, r2)
		default:
			c.fail(w, http.StatusNotFound, "no such page")
		}
	})
}

// serveIndex writes the console's one HTML page.
func serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, "console page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// signedIn returns the signed-in user of r, if their cookie is valid,
// they still have a role and are not revoked.
func (c *Console) signedIn(r *http.Request) (*user, bool) {
	who, groups, ok := c.sessionOf(r)
	if !ok {
		return nil, false
	}
	role := c.opts.Role(r.Context(), who, groups)
	if role == "" {
		return nil, false
	}
	if rv := c.opts.Revoker; rv != nil && rv.IsRevoked(r.Context(), inventory.Match{User: who}) {
		return nil, false
	}
	ck, _ := r.Cookie(c.session.Name())
	return &user{Name: who, Role: role, csrf: c.csrfToken(ck.Value)}, true
}

// csrfToken returns the CSRF token of a session: a MAC of the session
// cookie's value with the console's own key, so it needs no storage and
// changes with each sign-in.
func (c *Console) csrfToken(cookie string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("mcpgate console csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// redeemTicket handles a request that returns from the sign-in page
// with a ticket: a user with a role is signed in and sent on without
// the ticket. It reports whether it answered the request.
func (c *Console) redeemTicket(w http.ResponseWriter, r *http.Request) bool {
	who, groups, q, has, err := c.redeem(r)
	if !has {
		return false
	}
	if err != nil {
		c.log.InfoContext(r.Context(), "console: sign-in ticket refused", "error", err)
		c.message(w, http.StatusUnauthorized, "Sign-in expired", "This sign-in link is no longer valid.", c.basePath+"/")
		return true
	}
	role := c.opts.Role(r.Context(), who, groups)
	if role == "" {
		c.log.WarnContext(r.Context(), "console: signed-in user has no console role", "user", who)
		c.record(r.Context(), &audit.Record{User: who, Action: ActionRefused, Target: "sign-in", Outcome: audit.OutcomeDenied, Error: "not a console user"})
		c.message(w, http.StatusForbidden, "Not a console user", "You are signed in as "+who+", who has no role in the console (console.viewers, approvers or administrators).", "")
		return true
	}
	c.setSession(w, who, c.sessionGroups(r.Context(), who, groups))
	c.record(r.Context(), &audit.Record{User: who, Action: ActionSignedIn, Target: role})
	u := url.URL{Path: c.basePath + r.URL.Path, RawQuery: q.Encode()}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return true
}

// redeem redeems the sign-in ticket of r, if it carries one (as
// approval.RedeemTicket), with the groups of the sign-in when SignIn
// tells them.
func (c *Console) redeem(r *http.Request) (who string, groups []string, rest url.Values, has bool, err error) {
	gs, ok := c.opts.SignIn.(GroupsSignIn)
	if !ok {
		who, rest, has, err = approval.RedeemTicket(c.opts.SignIn, c.opts.TicketParam, r)
		return who, nil, rest, has, err
	}
	q := r.URL.Query()
	if r.Method != http.MethodGet || !q.Has(c.opts.TicketParam) {
		return "", nil, nil, false, nil
	}
	ticket := q.Get(c.opts.TicketParam)
	q.Del(c.opts.TicketParam)
	who, groups, err = gs.RedeemSignInGroups(r.Context(), ticket)
	return who, groups, q, true, err
}

// message writes a small HTML page (sign-in refusals, before the
// console's own page can load).
func (c *Console) message(w http.ResponseWriter, code int, title, text, link string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>`)
	b.WriteString(htmlEscape(title))
	b.WriteString(` · mcpgate console</title><link rel="stylesheet" href="` + c.basePath + `/assets/style.css"></head><body><main><h1>`)
	b.WriteString(htmlEscape(title))
	b.WriteString(`</h1><p>`)
	b.WriteString(htmlEscape(text))
	b.WriteString(`</p>`)
	if link != "" {
		b.WriteString(`<p><a href="` + htmlEscape(link) + `">Sign in again</a></p>`)
	}
	b.WriteString(`</main></body></html>`)
	_, _ = io.WriteString(w, b.String())
}

var htmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

func htmlEscape(s string) string { return htmlReplacer.Replace(s) }

// serveAPI authenticates an API request, checks CSRF on every method
// but GET and HEAD, and serves it.
func (c *Console) serveAPI(api *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	u, ok := c.signedIn(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error":   "not signed in to the console (or the sign-in expired, or the user has no console role)",
			"sign_in": c.opts.SignIn.SignInURL(c.basePath + "/"),
		})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := c.checkCSRF(r, u); err != nil {
			c.log.WarnContext(r.Context(), "console: request refused by the CSRF check", "user", u.Name, "path", r.URL.Path, "reason", err.Error())
			c.fail(w, http.StatusForbidden, "request refused by the CSRF check: "+err.Error())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	}
	api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
}

// checkCSRF checks a state-changing request: same origin (Sec-Fetch-Site
// or Origin), a JSON body, and the session's token in X-CSRF-Token.
func (c *Console) checkCSRF(r *http.Request, u *user) error {
	if err := c.cop.Check(r); err != nil {
		return err
	}
	if r.ContentLength != 0 {
		ct := r.Header.Get("Content-Type")
		if ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
			return errors.New("the body must be application/json")
		}
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		return errors.New("missing " + csrfHeader + " header")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(u.csrf)) != 1 {
		return errors.New(csrfHeader + " does not match the session")
	}
	return nil
}

// allowed reports whether the request's user has at least role; if not,
// it answers 403, records the refusal and returns false.
func (c *Console) allowed(w http.ResponseWriter, r *http.Request, role, what string) bool {
	u := userOf(r.Context())
	if rank(u.Role) >= rank(role) {
		return true
	}
	msg := what + " needs the " + role + " role; you (" + u.Name + ") are a " + u.Role
	c.record(r.Context(), &audit.Record{Action: ActionRefused, Target: r.Method + " " + c.basePath + r.URL.Path, Outcome: audit.OutcomeDenied, Error: msg})
	writeJSON(w, http.StatusForbidden, map[string]string{"error": msg, "role": u.Role, "needs": role})
	return false
}

// rank orders the roles.
func rank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleApprover:
		return 2
	case RoleAdministrator:
		return 3
	}
	return 0
}

// record appends an audit record of the console's user (if the request
// has one) acting through the console. It returns an error if the log
// refused it; without an audit log it records nothing.
func (c *Console) record(ctx context.Context, rec *audit.Record) error {
	if c.opts.Audit == nil {
		return nil
	}
	if u := userOf(ctx); u != nil && rec.User == "" {
		rec.User = u.Name
	}
	rec.Client = ClientName
	if rec.Outcome == "" {
		rec.Outcome = audit.OutcomeOK
	}
	if err := c.opts.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		c.log.ErrorContext(ctx, "console: audit record not written", "action", rec.Action, "error", err)
		return err
	}
	return nil
}

// by names the console user as approvals and revocations record them.
func by(ctx context.Context) string { return "console:" + userOf(ctx).Name }

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"answer could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// fail answers with a JSON error.
func (c *Console) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// readJSON decodes the request body into v (strictly: unknown and
// duplicate names are refused) or answers 400 and returns false.
func (c *Console) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		c.fail(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	if err := json.Unmarshal(b, v, json.RejectUnknownMembers(true)); err != nil {
		c.fail(w, http.StatusBadRequest, "the body is not the JSON expected: "+err.Error())
		return false
	}
	return true
}
