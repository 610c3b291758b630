package approval

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// The approver pages. Every request must pass Options.Approver. The
// decision form is protected against cross-site request forgery twice:
// by a double-submit token (a random value in a SameSite=Strict,
// HttpOnly cookie that the form must repeat) and by Go's
// CrossOriginProtection (Sec-Fetch-Site / Origin checks). Pages use no
// JavaScript, forbid framing and are never cached.

const (
	// csrfField is the form field that repeats the CSRF cookie.
	csrfField = "csrf_token"
	// csrfBytes is the size of a CSRF token before encoding.
	csrfBytes = 32
	// maxFormBytes bounds a decision form's body.
	maxFormBytes = 16 << 10
)

// csrfCookie returns the name of the CSRF cookie: __Host- prefixed (so
// that no other host or path can set it) when the pages are served over
// https.
func (s *Service) csrfCookie() string {
	if s.secure {
		return "__Host-mcpgate-approval-csrf"
	}
	return "mcpgate-approval-csrf"
}

type approverKey struct{}

// Handler returns the approver pages, to be mounted at Options.BaseURL
// with that path prefix stripped, for example
//
//	mux.Handle("/approvals/", http.StripPrefix("/approvals", svc.Handler()))
//
// GET / lists pending approvals, GET /{id} shows one with its decision
// form, POST /{id} records a decision (form fields decision=approve|deny,
// note, csrf_token). With browser sign-in, POST /signout (field
// csrf_token) signs the browser out.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveList)
	mux.HandleFunc("GET /{id}", s.serveDetail)
	mux.HandleFunc("POST /{id}", s.serveDecide)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		if s.approver == nil && s.authenticate == nil && s.browser == nil {
			s.page(w, http.StatusForbidden, "Approvals unavailable", "No approver sign-in is configured, so approvals cannot be decided here.", "")
			return
		}
		if r.URL.Path == signOutPath {
			s.serveSignOut(w, r)
			return
		}
		if s.redeemTicket(w, r) {
			return
		}
		who, ok := s.sessionApprover(r)
		if ok {
			mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), approverKey{}, who)))
			return
		}
		if s.authenticate != nil {
			var err error
			who, err = s.authenticate(r)
			var refused interface{ HTTPStatus() int }
			if errors.As(err, &refused) && refused.HTTPStatus() != http.StatusUnauthorized {
				var ra interface{ RetryAfterSeconds() int }
				if errors.As(err, &ra) {
					w.Header().Set("Retry-After", strconv.Itoa(ra.RetryAfterSeconds()))
				}
				s.page(w, refused.HTTPStatus(), "Sign-in refused", err.Error(), "")
				return
			}
			ok = err == nil
		} else {
			who, ok = s.approver(r)
		}
		if !ok || who == "" {
			s.unauthenticated(w, r)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), approverKey{}, who)))
	})
}

func approverOf(ctx context.Context) string {
	who, _ := ctx.Value(approverKey{}).(string)
	return who
}

// link returns the path of an approval's page.
func (s *Service) link(id string) string { return s.basePath + "/" + id }

// listLink returns the path of the list page.
func (s *Service) listLink() string { return s.basePath + "/" }

type listRow struct {
	*Approval
	Link string
}

func (s *Service) serveList(w http.ResponseWriter, r *http.Request) {
	pending, err := s.Pending(r.Context())
	if err != nil {
		s.log.ErrorContext(r.Context(), "approval pages: listing pending approvals", "error", err)
		s.page(w, http.StatusInternalServerError, "Approvals unavailable", "Pending approvals could not be read. Try again later.", "")
		return
	}
	rows := make([]listRow, len(pending))
	for i, a := range pending {
		rows[i] = listRow{a, s.link(a.ID)}
	}
	data := map[string]any{"Title": "Pending approvals", "Approver": approverOf(r.Context()), "Rows": rows, "Now": s.now()}
	if so := s.signOutLink(); so != "" {
		data["SignOut"], data["SignOutCSRF"] = so, s.csrfToken(w, r)
	}
	s.render(w, http.StatusOK, "list", data)
}

// detail is the data of the detail page.
type detail struct {
	Title     string
	Approver  string
	A         *Approval
	Arguments string
	ArgsNote  string
	Now       time.Time
	CanDecide bool
	Self      bool
	CSRF      string
	List      string
	// SignOut is the action of the sign-out form ("" without browser
	// sign-in), SignOutCSRF its token.
	SignOut     string
	SignOutCSRF string
}

// ArgumentsText returns a call's arguments as approvers read them on the
// approval pages (and the web console): the canonical form the approval
// is bound to, indented, with invisible and direction-changing
// characters shown as \u escapes; note says why the text differs from
// the arguments, if it does.
func ArgumentsText(args jsontext.Value) (text, note string) { return prettyArguments(args) }

// prettyArguments returns the arguments as the approver should read
// them: the canonical form the approval is bound to, indented.
func prettyArguments(args jsontext.Value) (text, note string) {
	if len(args) == 0 {
		return "", "no arguments"
	}
	canon, err := canonicalJSON(args, false)
	if err != nil {
		return visible(string(args)), "the arguments are not valid JSON: " + err.Error()
	}
	v := jsontext.Value(canon)
	if err := v.Indent(jsontext.WithIndent("  ")); err != nil {
		v = canon
	}
	text = visible(string(v))
	if text != string(v) {
		note = "the arguments contain invisible or direction-changing characters; they are shown as \\u escapes"
	}
	return text, note
}

// visible replaces characters that would hide or disguise text on the
// page (controls other than newline, format characters such as
// zero-width spaces and bidirectional overrides, line and paragraph
// separators) with \uXXXX escapes, so that the approver sees what they
// approve. In canonical JSON such characters only occur inside strings,
// where the escape has the same meaning.
func visible(s string) string {
	hidden := func(r rune) bool {
		return (unicode.IsControl(r) && r != '\n') || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
	}
	if !strings.ContainsFunc(s, hidden) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !hidden(r) {
			b.WriteRune(r)
			continue
		}
		if r > 0xffff {
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
			continue
		}
		fmt.Fprintf(&b, "\\u%04x", r)
	}
	return b.String()
}

func (s *Service) serveDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	a, err := s.Get(ctx, id)
	if err != nil {
		s.getError(w, r, err)
		return
	}
	who := approverOf(ctx)
	d := &detail{
		Title: "Approval request", Approver: who, A: a, Now: s.now(), List: s.listLink(),
		Self: who == a.Request.Principal,
	}
	d.Arguments, d.ArgsNote = prettyArguments(a.Request.Arguments)
	d.CanDecide = a.Status == StatusPending && !d.Self
	if d.CanDecide {
		d.CSRF = s.csrfToken(w, r)
	}
	if d.SignOut = s.signOutLink(); d.SignOut != "" {
		d.SignOutCSRF = s.csrfToken(w, r)
	}
	s.render(w, http.StatusOK, "detail", d)
}

// csrfToken returns the token of the request's CSRF cookie, setting a new
// cookie when there is none or it is malformed.
func (s *Service) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(s.csrfCookie()); err == nil && validToken(c.Value) {
		return c.Value
	}
	var b [csrfBytes]byte
	rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{
		Name: s.csrfCookie(), Value: tok, Path: "/",
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	})
	return tok
}

func validToken(t string) bool {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil && len(b) == csrfBytes
}

// checkCSRF reports why a decision form fails the CSRF checks, or nil.
func (s *Service) checkCSRF(r *http.Request) error {
	if err := s.cop.Check(r); err != nil {
		return err
	}
	c, err := r.Cookie(s.csrfCookie())
	if err != nil || !validToken(c.Value) {
		return errors.New("missing or malformed CSRF cookie")
	}
	form := r.PostForm.Get(csrfField)
	if subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) != 1 {
		return errors.New("form token does not match the CSRF cookie")
	}
	return nil
}

func (s *Service) serveDecide(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	who := approverOf(ctx)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "Bad request", "The decision form could not be read: "+err.Error(), s.link(id))
		return
	}
	if err := s.checkCSRF(r); err != nil {
		s.log.WarnContext(ctx, "approval pages: decision refused by CSRF check", "id", id, "approver", who, "reason", err.Error())
		s.page(w, http.StatusForbidden, "Decision refused", "This form could not be verified as coming from the approval page. Open the approval page again and repeat your decision.", s.link(id))
		return
	}
	var approve bool
	switch r.PostForm.Get("decision") {
	case "approve":
		approve = true
	case "deny":
	default:
		s.page(w, http.StatusBadRequest, "Bad request", `The decision must be "approve" or "deny".`, s.link(id))
		return
	}
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if !utf8.ValidString(note) || len(note) > MaxNoteLength {
		s.page(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The note must be valid text of at most %d bytes.", MaxNoteLength), s.link(id))
		return
	}
	err := s.Decide(ctx, id, who, approve, note)
	switch {
	case err == nil:
		if approve {
			s.page(w, http.StatusOK, "Approved", "The call is approved. The requester can now retry it once, with exactly the same arguments, before the approval expires.", s.listLink())
		} else {
			s.page(w, http.StatusOK, "Denied", "The call is denied. The requester has been told.", s.listLink())
		}
	case errors.Is(err, ErrNotFound):
		s.page(w, http.StatusNotFound, "Unknown approval", "There is no approval request with this address.", s.listLink())
	case errors.Is(err, ErrSelfApproval):
		s.page(w, http.StatusForbidden, "Decision refused", "You cannot decide on your own request; another approver must.", s.listLink())
	case errors.Is(err, ErrExpired):
		s.page(w, http.StatusGone, "Approval expired", "This request expired before a decision was made. The requester must ask again.", s.listLink())
	case errors.Is(err, ErrDecided):
		s.page(w, http.StatusConflict, "Already decided", "Someone already decided on this request.", s.link(id))
	default:
		s.log.ErrorContext(ctx, "approval pages: decision failed", "id", id, "approver", who, "error", err)
		s.page(w, http.StatusInternalServerError, "Decision not recorded", "Your decision could not be recorded, so the call stays unapproved. Try again later.", s.link(id))
	}
}

// getError answers a failed Get.
func (s *Service) getError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		s.page(w, http.StatusNotFound, "Unknown approval", "There is no approval request with this address.", s.listLink())
		return
	}
	s.log.ErrorContext(r.Context(), "approval pages: reading approval", "id", r.PathValue("id"), "error", err)
	s.page(w, http.StatusInternalServerError, "Approvals unavailable", "This approval request could not be read. Try again later.", s.listLink())
}

// page renders a simple message page.
func (s *Service) page(w http.ResponseWriter, code int, title, message, back string) {
	s.render(w, code, "message", map[string]any{"Title": title, "Message": message, "Back": back})
}

func (s *Service) render(w http.ResponseWriter, code int, name string, data any) {
	var b strings.Builder
	if err := s.pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("approval pages: rendering", "page", name, "error", err)
		http.Error(w, "approval page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// parsePages parses the page templates (constant text: failure is a
// programming error caught by the tests).
func parsePages() *template.Template {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"until": func(t, now time.Time) string {
			d := t.Sub(now).Round(time.Second)
			if d <= 0 {
				return "expired"
			}
			return "in " + d.String()
		},
		"join":    func(s []string, sep string) string { return visible(strings.Join(s, sep)) },
		"visible": visible,
	}
	return template.Must(template.New("pages").Funcs(funcs).Parse(pagesText))
}

const pagesText = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · mcpgate</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}
th{width:12em}pre{background:#f5f5f5;padding:.8em;overflow:auto;white-space:pre-wrap;word-break:break-all}
.who{color:#666;float:right}.signout{display:inline;margin-left:1em}.signout button{font-size:.9em;padding:.1em .6em;margin:0}button{font-size:1em;padding:.4em 1.2em;margin-right:1em}
.approve{background:#176f2c;color:#fff;border:0}.deny{background:#a61b1b;color:#fff;border:0}
textarea{width:100%;height:4em}.warn{background:#fff4d6;padding:.6em}
</style></head><body>
{{if .Approver}}<div class="who">Signed in as {{visible .Approver}}{{if .SignOut}}
<form class="signout" method="post" action="{{.SignOut}}"><input type="hidden" name="csrf_token" value="{{.SignOutCSRF}}"><button type="submit">Sign out</button></form>{{end}}</div>{{end}}{{end}}

{{define "foot"}}</body></html>
{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Back}}<p><a href="{{.Back}}">Back</a></p>{{end}}
{{template "foot" .}}{{end}}

{{define "signedout"}}{{template "head" .}}
<h1>Signed out</h1>
<p>You are signed out of the approval pages.</p>
{{if .SignOutURL}}<form method="post" action="{{.SignOutURL}}"><p><button type="submit">Also sign out of mcpgate</button>
(ends the sign-in that would otherwise sign you in again without a password)</p></form>{{end}}
{{template "foot" .}}{{end}}

{{define "list"}}{{template "head" .}}
<h1>Pending approvals</h1>
{{if .Rows}}<table>
<tr><th>Requested</th><th>Principal</th><th>Client</th><th>Tool</th><th>Policies</th><th>Expires</th></tr>
{{range .Rows}}<tr><td><a href="{{.Link}}">{{when .CreatedAt}}</a></td><td>{{visible .Request.Principal}}</td><td>{{visible .Request.Client}}</td><td>{{visible .Request.Tool}}</td><td>{{join .Request.Policies ", "}}</td><td>{{until .ExpiresAt $.Now}}</td></tr>
{{end}}</table>
{{else}}<p>No approval requests are waiting.</p>{{end}}
{{template "foot" .}}{{end}}

{{define "detail"}}{{template "head" .}}
<h1>Approval request</h1>
<table>
<tr><th>Status</th><td>{{.A.Status}}{{if .A.Approver}} by {{visible .A.Approver}} at {{when .A.DecidedAt}}{{end}}</td></tr>
<tr><th>Principal</th><td>{{visible .A.Request.Principal}}</td></tr>
<tr><th>Client</th><td>{{visible .A.Request.Client}}</td></tr>
<tr><th>Session</th><td>{{visible .A.Request.Session}}</td></tr>
<tr><th>Upstream</th><td>{{visible .A.Request.Upstream}}</td></tr>
<tr><th>Tool</th><td>{{visible .A.Request.Tool}}</td></tr>
<tr><th>Required by</th><td>{{join .A.Request.Policies ", "}} (policy version {{visible .A.Request.PolicyVersion}})</td></tr>
{{if .A.Request.Reason}}<tr><th>Reason</th><td>{{visible .A.Request.Reason}}</td></tr>{{end}}
<tr><th>Requested</th><td>{{when .A.CreatedAt}}</td></tr>
<tr><th>Expires</th><td>{{when .A.ExpiresAt}} ({{until .A.ExpiresAt .Now}})</td></tr>
{{if .A.Note}}<tr><th>Note</th><td>{{visible .A.Note}}</td></tr>{{end}}
</table>
<h2>Arguments</h2>
{{if .ArgsNote}}<p class="warn">{{.ArgsNote}}</p>{{end}}{{if .Arguments}}<pre>{{.Arguments}}</pre>{{end}}
{{if .CanDecide}}<form method="post">
<input type="hidden" name="csrf_token" value="{{.CSRF}}">
<p><label>Note (optional)<br><textarea name="note" maxlength="2000"></textarea></label></p>
<p><button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button></p>
<p>Approving allows this exact call, with these exact arguments, once, until it expires.</p>
</form>
{{else if .Self}}{{if eq .A.Status "pending"}}<p class="warn">This is your own request: another approver must decide.</p>{{end}}
{{end}}
<p><a href="{{.List}}">All pending approvals</a></p>
{{template "foot" .}}{{end}}
`
