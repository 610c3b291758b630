package upstreamauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store"
)

const (
	// asSessionCookie is the built-in authorization server's browser
	// session cookie (scoped to the issuer path, under which the connect
	// and callback pages are mounted when the gateway has one).
	asSessionCookie = "mcpgate_session"
	// flowCookiePrefix names the cookie binding a browser to one flow.
	flowCookiePrefix = "mcpgate_upauth_"
)

// Mount adds the connect page, the callback and, when the pages are
// served over https, the gateway's Client ID Metadata Document to mux,
// under the path of Options.BaseURL + "/upstream-auth". It adds nothing
// without Options.PerUser or a base URL.
func (s *Service) Mount(mux *http.ServeMux) {
	if s == nil || s.tokens == nil || s.path == "" {
		return
	}
	mux.HandleFunc("GET "+s.path+"/callback", s.handleCallback)
	mux.HandleFunc("GET "+s.path+"/{id}", s.handleConnect)
	if u := s.cimdURL(); u != "" {
		md := s.clientMetadata(meta.AuthMethodNone)
		md.ClientID = u
		if h, err := oauthclient.ClientMetadataHandler(md); err == nil {
			mux.Handle("GET "+s.path+"/client-metadata.json", h)
		} else {
			s.logger.Warn("client metadata document", "error", err)
		}
	}
}

// SessionStore looks up browser sessions of the built-in authorization
// server; store.Store is one.
type SessionStore interface {
	GetSession(ctx context.Context, idHash string, now time.Time) (*store.Session, error)
}

// SessionCookiePrincipal returns a Hooks.BrowserPrincipal that takes the
// user signed in at the built-in authorization server, by its session
// cookie (the pages must then be under its issuer; see
// Options.BaseURL).
func SessionCookiePrincipal(sessions SessionStore) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		c, err := r.Cookie(asSessionCookie)
		if err != nil || c.Value == "" {
			return "", errors.New("you are not signed in to mcpgate in this browser")
		}
		se, err := sessions.GetSession(r.Context(), store.Digest(c.Value), time.Now())
		if err != nil || se.Kind != "user" || se.Subject == "" {
			return "", errors.New("your mcpgate sign-in in this browser has expired")
		}
		return se.Subject, nil
	}
}

// browserPrincipal says who the user of a browser request is.
func (s *Service) browserPrincipal(r *http.Request) (string, error) {
	if s.hooks.BrowserPrincipal == nil {
		return "", errors.New("the gateway cannot tell who you are in the browser")
	}
	return s.hooks.BrowserPrincipal(r)
}

func flowCookie(f *authFlow) string { return flowCookiePrefix + f.id }

func (s *Service) handleConnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	s.expireLocked(time.Now())
	f := s.flows[id]
	s.mu.Unlock()
	if f == nil {
		page(w, http.StatusNotFound, "Link expired", "This authorization link is unknown, expired or already used. Retry the request in your MCP client to get a new one.")
		return
	}
	who, err := s.browserPrincipal(r)
	if err != nil {
		page(w, http.StatusUnauthorized, "Sign-in needed", "Cannot continue: "+err.Error()+". Sign in to mcpgate from your MCP client in this browser, then open the link again.")
		return
	}
	if who != f.principal {
		f.up.Logger.Warn("authorization link opened by another user", "principal", f.principal, "browser_user", who)
		page(w, http.StatusForbidden, "Wrong user", "This authorization link was made for another user. Ask your MCP client for your own link.")
		return
	}
	s.mu.Lock()
	if !f.started {
		f.started = true
		f.nonce = meta.RandomToken(24)
		f.ready = make(chan struct{})
		f.resp = make(chan *oauthclient.AuthorizationResponse, 1)
		f.done = make(chan struct{})
		go s.run(f)
	}
	ready, nonce := f.ready, f.nonce
	s.mu.Unlock()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		page(w, http.StatusGatewayTimeout, "Try again", "The upstream's authorization server did not answer in time. Reload this page to try again.")
		return
	case <-r.Context().Done():
		return
	}
	s.mu.Lock()
	authURL, ferr := f.authURL, f.err
	s.mu.Unlock()
	if ferr != nil {
		page(w, http.StatusBadGateway, "Authorization failed", "The authorization with "+f.up.Name+" could not start. Retry the request in your MCP client.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie(f), Value: nonce, Path: s.path + "/callback",
		MaxAge: int(time.Until(f.expires).Seconds()) + 1, HttpOnly: true, Secure: strings.HasPrefix(s.base, "https://"), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

func (s *Service) handleCallback(w http.ResponseWriter, r *http.Request) {
	resp := oauthclient.ParseAuthorizationResponse(r.URL)
	s.mu.Lock()
	f := s.byState[resp.State]
	s.mu.Unlock()
	if resp.State == "" || f == nil || time.Now().After(f.expires) {
		page(w, http.StatusBadRequest, "Link expired", "This authorization response is unknown, expired or already used. Retry the request in your MCP client.")
		return
	}
	c, err := r.Cookie(flowCookie(f))
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.nonce)) != 1 {
		f.up.Logger.Warn("authorization response in a browser that did not start the flow", "principal", f.principal)
		page(w, http.StatusForbidden, "Wrong browser", "This authorization was started in another browser. Open the link from your MCP client in this browser.")
		return
	}
	if who, err := s.browserPrincipal(r); err != nil || who != f.principal {
		page(w, http.StatusForbidden, "Wrong user", "This authorization was started for another user.")
		return
	}
	// Single use: the first response that passes the checks is the one.
	s.mu.Lock()
	if s.byState[resp.State] != f {
		s.mu.Unlock()
		page(w, http.StatusBadRequest, "Link expired", "This authorization response was already used.")
		return
	}
	delete(s.byState, resp.State)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: flowCookie(f), Value: "", Path: s.path + "/callback", MaxAge: -1, HttpOnly: true})
	f.resp <- resp // buffered, and only this request gets here
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		page(w, http.StatusGatewayTimeout, "Still working", "The upstream's authorization server is slow to answer. Retry the request in your MCP client in a moment.")
		return
	case <-r.Context().Done():
		return
	}
	if f.result != nil {
		msg := "The authorization with " + f.up.Name + " failed. Retry the request in your MCP client to start again."
		var me *meta.Error
		if errors.As(f.result, &me) && me.Code == meta.ErrAccessDenied {
			msg = "You did not allow access to " + f.up.Name + "."
		}
		page(w, http.StatusBadRequest, "Authorization failed", msg)
		return
	}
	page(w, http.StatusOK, "Authorized", "mcpgate can now use "+f.up.Name+" on your behalf. You can close this window.")
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · mcpgate</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// page renders a small HTML page.
func page(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}
