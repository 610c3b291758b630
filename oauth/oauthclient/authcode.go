package oauthclient

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// AuthorizationRequest is handed to an AuthorizationCodeHandler: the
// user agent must visit URL, and the authorization server will redirect it
// to RedirectURL with the response.
type AuthorizationRequest struct {
	// URL is the complete authorization request URL.
	URL string
	// RedirectURL is the redirect_uri sent in the request.
	RedirectURL string
	// State is the state value sent in the request.
	State string
}

// AuthorizationResponse is the authorization response from the redirect's
// query parameters (RFC 6749 §4.1.2, RFC 9207).
type AuthorizationResponse struct {
	Code  string
	State string
	// Iss is the RFC 9207 issuer parameter; HasIss says whether it was
	// present at all.
	Iss    string
	HasIss bool
	// Error, ErrorDescription and ErrorURI are set for an error response.
	Error            string
	ErrorDescription string
	ErrorURI         string
}

// ParseAuthorizationResponse extracts the authorization response from the
// query of the URL the authorization server redirected to.
func ParseAuthorizationResponse(redirect *url.URL) *AuthorizationResponse {
	q := redirect.Query()
	r := &AuthorizationResponse{
		Code:             q.Get("code"),
		State:            q.Get("state"),
		Iss:              q.Get("iss"),
		Error:            q.Get("error"),
		ErrorDescription: q.Get("error_description"),
		ErrorURI:         q.Get("error_uri"),
	}
	_, r.HasIss = q["iss"]
	return r
}

// AuthorizationCodeHandler obtains the authorization response for an
// authorization request: interactively (LoopbackReceiver opens a browser
// and listens on the redirect URI) or headlessly (HeadlessHandler).
type AuthorizationCodeHandler interface {
	HandleAuthorization(ctx context.Context, req *AuthorizationRequest) (*AuthorizationResponse, error)
}

// AuthorizationCodeHandlerFunc adapts a function to AuthorizationCodeHandler.
type AuthorizationCodeHandlerFunc func(ctx context.Context, req *AuthorizationRequest) (*AuthorizationResponse, error)

// HandleAuthorization calls f.
func (f AuthorizationCodeHandlerFunc) HandleAuthorization(ctx context.Context, req *AuthorizationRequest) (*AuthorizationResponse, error) {
	return f(ctx, req)
}

// AuthorizeParams are the inputs of Authorize.
type AuthorizeParams struct {
	// Client is the client identity (required).
	Client *ClientAuth
	// RedirectURL is the registered redirect URI (required).
	RedirectURL string
	// Scope is the space-separated scope to request; empty omits it.
	Scope string
	// Handler carries the user agent through the authorization endpoint
	// (required).
	Handler AuthorizationCodeHandler
}

// Authorize runs the authorization code grant with PKCE S256 against the
// discovered authorization server: it refuses servers that do not
// advertise S256, sends resource (exactly d.Resource) in both requests,
// checks state, checks the RFC 9207 iss parameter (required when the server
// advertises it, and compared exactly whenever present), and exchanges the
// code for a token.
func Authorize(ctx context.Context, hc *http.Client, d *Discovery, p *AuthorizeParams) (*Token, error) {
	as := d.AuthorizationServer
	switch {
	case as == nil:
		return nil, errors.New("oauthclient: authorize: no authorization server metadata")
	case p == nil || p.Client == nil || p.Client.ClientID == "":
		return nil, ErrNoClientIdentity
	case p.Handler == nil:
		return nil, ErrNoAuthorizationHandler
	case p.RedirectURL == "":
		return nil, errors.New("oauthclient: authorize: missing redirect URL")
	case !as.SupportsPKCES256():
		return nil, fmt.Errorf("%w (issuer %s)", ErrPKCENotSupported, as.Issuer)
	case as.AuthorizationEndpoint == "" || as.TokenEndpoint == "":
		return nil, fmt.Errorf("oauthclient: authorization server %s has no authorization or token endpoint", as.Issuer)
	}
	authURL, err := url.Parse(as.AuthorizationEndpoint)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: authorization endpoint: %w", err)
	}
	if authURL.Scheme != "https" && !(authURL.Scheme == "http" && safehttp.IsLoopbackHost(authURL.Hostname())) {
		return nil, fmt.Errorf("oauthclient: authorization endpoint %s must use https", redactURL(authURL))
	}
	verifier := meta.GenerateCodeVerifier()
	state := meta.RandomToken(24)
	q := authURL.Query()
	q.Set("response_type", meta.ResponseTypeCode)
	q.Set("client_id", p.Client.ClientID)
	q.Set("redirect_uri", p.RedirectURL)
	q.Set("state", state)
	q.Set("code_challenge", meta.S256Challenge(verifier))
	q.Set("code_challenge_method", meta.CodeChallengeMethodS256)
	q.Set("resource", d.Resource)
	if p.Scope != "" {
		q.Set("scope", p.Scope)
	}
	authURL.RawQuery = q.Encode()

	resp, err := p.Handler.HandleAuthorization(ctx, &AuthorizationRequest{URL: authURL.String(), RedirectURL: p.RedirectURL, State: state})
	if err != nil {
		return nil, fmt.Errorf("oauthclient: authorization: %w", err)
	}
	if resp == nil {
		return nil, errors.New("oauthclient: authorization: handler returned no response")
	}
	if err := CheckAuthorizationResponse(resp, state, as); err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("grant_type", meta.GrantTypeAuthorizationCode)
	form.Set("code", resp.Code)
	form.Set("redirect_uri", p.RedirectURL)
	form.Set("code_verifier", verifier)
	form.Set("resource", d.Resource)
	tr, err := tokenRequest(ctx, hc, as.TokenEndpoint, form, p.Client, as)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: token request: %w", err)
	}
	return tokenFromResponse(tr, time.Now(), p.Scope, d.Resource, as.Issuer, as.TokenEndpoint, p.Client)
}

// CheckAuthorizationResponse validates an authorization response against
// the state that was sent and the authorization server's metadata: state
// must match; iss must equal as.Issuer exactly when present and must be
// present when the server advertises
// authorization_response_iss_parameter_supported; an error response
// becomes a *meta.Error; a success must carry a code.
func CheckAuthorizationResponse(resp *AuthorizationResponse, state string, as *meta.AuthorizationServerMetadata) error {
	if resp.State == "" || subtle.ConstantTimeCompare([]byte(resp.State), []byte(state)) != 1 {
		return ErrStateMismatch
	}
	switch {
	case resp.HasIss && resp.Iss != as.Issuer:
		return fmt.Errorf("%w: got %q, want %q", ErrIssuerMismatch, resp.Iss, as.Issuer)
	case !resp.HasIss && as.AuthorizationResponseIssParameterSupported:
		return fmt.Errorf("%w: iss parameter missing although the server advertises it", ErrIssuerMismatch)
	}
	if resp.Error != "" {
		return &meta.Error{Code: resp.Error, Description: resp.ErrorDescription, URI: resp.ErrorURI}
	}
	if resp.Code == "" {
		return errors.New("oauthclient: authorization response has no code")
	}
	return nil
}

// HeadlessHandler completes the authorization step without a browser: it
// GETs the authorization URL without following redirects and reads the
// response from the Location of the redirect to the redirect URI. It suits
// authorization servers that redirect immediately (test servers, or
// servers that already have a session through Header).
type HeadlessHandler struct {
	// Client makes the request; it must not follow redirects.
	Client *http.Client
	// Header is added to the request (e.g. a session cookie).
	Header http.Header
}

// NewHeadlessHandler returns a HeadlessHandler whose client uses the
// SSRF-safe transport built from opts and never follows redirects.
func NewHeadlessHandler(opts *safehttp.Options) *HeadlessHandler {
	timeout := safehttp.DefaultTimeout
	if opts != nil && opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	return &HeadlessHandler{Client: &http.Client{
		Transport:     safehttp.NewTransport(opts),
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// HandleAuthorization implements AuthorizationCodeHandler.
func (h *HeadlessHandler) HandleAuthorization(ctx context.Context, req *AuthorizationRequest) (*AuthorizationResponse, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h.Header {
		hreq.Header[k] = v
	}
	resp, err := h.Client.Do(hreq)
	if err != nil {
		return nil, err
	}
	_, _ = safehttp.ReadBody(resp, 64<<10)
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil, fmt.Errorf("authorization endpoint answered HTTP %d instead of redirecting (user interaction needed?)", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("authorization endpoint redirect: %w", err)
	}
	want, err := url.Parse(req.RedirectURL)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(loc.Scheme, want.Scheme) || !strings.EqualFold(loc.Host, want.Host) || loc.Path != want.Path {
		return nil, fmt.Errorf("authorization endpoint redirected to %s, not to the redirect URI (user interaction needed?)", redactURL(loc))
	}
	return ParseAuthorizationResponse(loc), nil
}

// LoopbackOptions configures NewLoopbackReceiver.
type LoopbackOptions struct {
	// Addr is the listen address; it must be a loopback IP. Default
	// "127.0.0.1:0" (any free port).
	Addr string
	// Path is the callback path; default "/callback".
	Path string
	// Host is the host name used in the redirect URL; default the IP of
	// Addr ("localhost" is also accepted by MCP authorization servers).
	Host string
	// OpenURL shows the authorization URL to the user; default OpenBrowser.
	OpenURL func(ctx context.Context, url string) error
}

// LoopbackReceiver is an interactive AuthorizationCodeHandler: it listens on
// a loopback address for the redirect and opens the user's browser at the
// authorization URL. Use its RedirectURL as Config.RedirectURL.
type LoopbackReceiver struct {
	srv     *http.Server
	ln      net.Listener
	path    string
	url     string
	openURL func(ctx context.Context, url string) error
	results chan *AuthorizationResponse
	mu      sync.Mutex // serialises HandleAuthorization
}

// NewLoopbackReceiver starts listening. Close it when done.
func NewLoopbackReceiver(opts *LoopbackOptions) (*LoopbackReceiver, error) {
	o := LoopbackOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Path == "" {
		o.Path = "/callback"
	}
	if !strings.HasPrefix(o.Path, "/") {
		return nil, fmt.Errorf("oauthclient: loopback callback path %q must start with /", o.Path)
	}
	ap, err := netip.ParseAddrPort(o.Addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("oauthclient: loopback receiver address %q must be a loopback IP and port", o.Addr)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: loopback receiver: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	host := o.Host
	if host == "" {
		host = ap.Addr().String()
	}
	if o.OpenURL == nil {
		o.OpenURL = OpenBrowser
	}
	r := &LoopbackReceiver{
		ln:      ln,
		path:    o.Path,
		url:     "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + o.Path,
		openURL: o.OpenURL,
		results: make(chan *AuthorizationResponse, 1),
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// RedirectURL is the redirect URI to register and send.
func (r *LoopbackReceiver) RedirectURL() string { return r.url }

// Close stops listening.
func (r *LoopbackReceiver) Close() error { return r.srv.Close() }

func (r *LoopbackReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != r.path || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	resp := ParseAuthorizationResponse(req.URL)
	select {
	case r.results <- resp:
	default: // a response is already pending; ignore duplicates
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	msg := "Authorization complete. You can close this window."
	if resp.Error != "" {
		msg = "Authorization failed: " + resp.Error
	}
	fmt.Fprintf(w, "<!doctype html><title>Authorization</title><p>%s</p>", html.EscapeString(msg))
}

// HandleAuthorization implements AuthorizationCodeHandler: it opens the
// authorization URL and waits for the redirect or for ctx to end.
func (r *LoopbackReceiver) HandleAuthorization(ctx context.Context, req *AuthorizationRequest) (*AuthorizationResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select { // drop a stale response from an earlier attempt
	case <-r.results:
	default:
	}
	if err := r.openURL(ctx, req.URL); err != nil {
		return nil, fmt.Errorf("opening authorization URL: %w", err)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case resp := <-r.results:
		return resp, nil
	}
}

// OpenBrowser opens rawURL (http or https only) in the user's browser.
//
// When the environment variable BROWSER is set, it names the browser as
// xdg-open reads it: a list of commands separated by ':', of which the
// first whose program exists is run. A command is split into words at
// spaces (there is no quoting); "%s" in a word is replaced by the URL,
// and a command without "%s" receives the URL as its last argument.
// BROWSER set but naming no program that exists is an error. Otherwise
// the system's opener is used: open on macOS, the URL protocol handler
// on Windows, xdg-open elsewhere.
//
// The command is started and not waited for (a browser may run until
// the user closes it); its output goes nowhere, so that it can never mix
// with the caller's own output; ctx only stops OpenBrowser from starting
// it.
func OpenBrowser(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("oauthclient: refusing to open non-http(s) URL")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	argv, err := browserCommand(os.Getenv("BROWSER"), runtime.GOOS, rawURL)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("oauthclient: opening browser: %w", err)
	}
	go cmd.Wait()
	return nil
}

// browserCommand returns the command that opens rawURL: from browser
// (the value of $BROWSER) when it is set, else the system opener of
// goos.
func browserCommand(browser, goos, rawURL string) ([]string, error) {
	if strings.TrimSpace(browser) == "" {
		switch goos {
		case "darwin":
			return []string{"open", rawURL}, nil
		case "windows":
			return []string{"rundll32", "url.dll,FileProtocolHandler", rawURL}, nil
		}
		return []string{"xdg-open", rawURL}, nil
	}
	for entry := range strings.SplitSeq(browser, ":") {
		words := strings.Fields(entry)
		if len(words) == 0 {
			continue
		}
		if _, err := exec.LookPath(words[0]); err != nil {
			continue
		}
		substituted := false
		for i, w := range words[1:] {
			if strings.Contains(w, "%s") {
				words[i+1] = strings.ReplaceAll(w, "%s", rawURL)
				substituted = true
			}
		}
		if !substituted {
			words = append(words, rawURL)
		}
		return words, nil
	}
	return nil, fmt.Errorf("oauthclient: opening browser: no program of $BROWSER (%q) was found", browser)
}
