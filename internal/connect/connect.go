// Package connect relays an MCP client that speaks only stdio (Claude
// Desktop and other hosts that start a command) to a remote MCP server
// over Streamable HTTP, usually an mcpgate gateway: it is the body of
// `mcpgate connect URL`.
//
// Every JSON-RPC message read from standard input is sent to the remote
// endpoint unchanged, and every message from the remote (responses,
// notifications, and the server's own requests such as elicitation,
// sampling or roots) is written to standard output unchanged, so the
// host and the server negotiate and use every feature themselves.
// Standard output carries nothing but MCP messages; diagnostics go to the
// logger (standard error).
//
// When the remote answers 401, the relay signs the user in with OAuth
// (package oauthclient): protected resource metadata, authorization
// server metadata, a client identity (a Client ID Metadata Document URL
// when one is given and the server supports it, else dynamic
// registration), then the authorization code grant with PKCE through a
// loopback redirect listener and the user's browser. Tokens are kept in
// a file readable only by the user and refreshed when they expire; a
// refused refresh starts a new sign-in.
//
// When the remote says the session expired (404), the relay starts a new
// session with the host's own initialize request and answers the host's
// requests that were waiting with an error, so the host keeps working
// (at most MaxReinitializations times per run).
package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// DefaultMaxInFlight bounds the requests from the host that are being
// sent to the remote at once; further requests wait.
const DefaultMaxInFlight = 64

// DefaultSignInTimeout bounds how long connect waits for the user to
// complete an OAuth sign-in in the browser; the request that needed it
// then fails with an error that says so.
const DefaultSignInTimeout = 5 * time.Minute

// Options configures Run.
type Options struct {
	// URL is the remote MCP endpoint, e.g. https://gw.example.com/mcp.
	// Required.
	URL string
	// Header holds headers sent with every request (the --header flag).
	// An Authorization header turns OAuth sign-in off.
	Header http.Header
	// TokenFile is where OAuth tokens are kept (mode 0600); default
	// DefaultTokenFile(URL).
	TokenFile string
	// ClientMetadataURL, if set, is the https URL of a Client ID Metadata
	// Document used as the OAuth client id when the authorization server
	// supports them; otherwise the client registers dynamically.
	ClientMetadataURL string
	// NoBrowser only prints the sign-in URL; it does not try to open a
	// browser.
	NoBrowser bool
	// OpenURL, if set, replaces opening a browser (tests drive the
	// sign-in with it). The URL is printed to Stderr in any case.
	OpenURL func(ctx context.Context, url string) error
	// Stdin, Stdout and Stderr default to the process's.
	Stdin  io.ReadCloser
	Stdout io.WriteCloser
	Stderr io.Writer
	// Logger receives diagnostics; default a text logger on Stderr at
	// level Info.
	Logger *slog.Logger
	// SignInTimeout bounds the wait for a browser sign-in;
	// DefaultSignInTimeout if zero or negative.
	SignInTimeout time.Duration
	// MaxInFlight bounds concurrent requests to the remote;
	// DefaultMaxInFlight if zero or negative.
	MaxInFlight int
	// SafeHTTP configures the OAuth client's HTTP client (discovery,
	// registration, tokens). Default: public addresses only, except that
	// loopback addresses, also over plain http, are allowed when URL's
	// host is a loopback address.
	SafeHTTP *safehttp.Options
}

// DefaultTokenFile returns where tokens for the endpoint rawURL are kept:
// <user config dir>/mcpgate/tokens/<host>.json, where <host> is the URL's
// host with the port, ':' replaced by '_'.
func DefaultTokenFile(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("connect: %q is not an absolute URL", rawURL)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("connect: no user config directory for the token file (use --token-file): %w", err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, u.Host)
	return filepath.Join(dir, "mcpgate", "tokens", name+".json"), nil
}

// checkURL validates the remote endpoint.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("connect: URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("connect: URL %q must be an absolute http(s) URL", raw)
	}
	if u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("connect: URL %q must not have a fragment or user info", raw)
	}
	return u, nil
}

// isLoopback reports whether host names a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run relays stdin and stdout to the remote endpoint until the host
// closes stdin, the remote ends the session or ctx is done.
func Run(ctx context.Context, o *Options) error {
	o = o.withDefaults()
	u, err := checkURL(o.URL)
	if err != nil {
		return err
	}
	rt, closeAuth, err := o.transport(u)
	if err != nil {
		return err
	}
	defer closeAuth()
	pv := &protocolVersion{next: rt}
	tr := &mcp.StreamableClientTransport{
		Endpoint: o.URL, HTTPClient: &http.Client{Transport: pv}, Header: o.Header, Logger: o.Logger,
	}
	remote, err := tr.Connect(ctx)
	if err != nil {
		return err
	}
	local, err := (&mcp.IOTransport{Reader: o.Stdin, Writer: o.Stdout, Logger: o.Logger}).Connect(ctx)
	if err != nil {
		remote.Close()
		return err
	}
	r := &relay{local: local, remote: remote, dial: tr.Connect, pv: pv, log: o.Logger, sem: make(chan struct{}, o.MaxInFlight)}
	return r.run(ctx)
}

func (o *Options) withDefaults() *Options {
	c := *o
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Stderr, nil))
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.SignInTimeout <= 0 {
		c.SignInTimeout = DefaultSignInTimeout
	}
	return &c
}

// transport returns the HTTP transport to the remote: with OAuth sign-in
// unless a static Authorization header is configured.
func (o *Options) transport(u *url.URL) (http.RoundTripper, func(), error) {
	base := http.DefaultTransport
	if o.Header.Get("Authorization") != "" {
		return base, func() {}, nil
	}
	file := o.TokenFile
	if file == "" {
		var err error
		if file, err = DefaultTokenFile(o.URL); err != nil {
			return nil, nil, err
		}
	}
	store, err := oauthclient.NewFileTokenStore(file)
	if err != nil {
		return nil, nil, err
	}
	sh := o.SafeHTTP
	if sh == nil {
		sh = &safehttp.Options{Timeout: 30 * time.Second}
		if isLoopback(u.Hostname()) {
			sh.AllowLoopback, sh.AllowInsecureLoopback = true, true
		}
	}
	recv, err := oauthclient.NewLoopbackReceiver(&oauthclient.LoopbackOptions{OpenURL: o.openURL})
	if err != nil {
		return nil, nil, fmt.Errorf("connect: loopback redirect listener: %w", err)
	}
	tr, err := oauthclient.NewTransport(base, &oauthclient.Config{
		ServerURL:            o.URL,
		ClientIDMetadataURL:  o.ClientMetadataURL,
		ClientMetadata:       &meta.ClientMetadata{ClientName: "mcpgate connect"},
		RedirectURL:          recv.RedirectURL(),
		AuthorizationHandler: boundedSignIn(recv, o.SignInTimeout),
		TokenStore:           store,
		SafeHTTP:             sh,
	})
	if err != nil {
		recv.Close()
		return nil, nil, err
	}
	o.Logger.Debug("tokens are kept in " + file)
	return tr, func() { recv.Close() }, nil
}

// boundedSignIn waits at most timeout for h's sign-in.
func boundedSignIn(h oauthclient.AuthorizationCodeHandler, timeout time.Duration) oauthclient.AuthorizationCodeHandler {
	return oauthclient.AuthorizationCodeHandlerFunc(func(ctx context.Context, req *oauthclient.AuthorizationRequest) (*oauthclient.AuthorizationResponse, error) {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, err := h.HandleAuthorization(sctx, req)
		if err != nil && ctx.Err() == nil && errors.Is(sctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("the sign-in was not completed within %v (run again to sign in)", timeout)
		}
		return resp, err
	})
}

// openURL shows the sign-in URL: always printed to stderr, then opened
// with OpenURL, or in the browser unless NoBrowser.
func (o *Options) openURL(ctx context.Context, authURL string) error {
	fmt.Fprintf(o.Stderr, "mcpgate connect: sign in to %s at:\n\n  %s\n\n", o.URL, authURL)
	switch {
	case o.OpenURL != nil:
		return o.OpenURL(ctx, authURL)
	case o.NoBrowser:
		return nil
	}
	if err := oauthclient.OpenBrowser(ctx, authURL); err != nil {
		fmt.Fprintf(o.Stderr, "mcpgate connect: could not open a browser (%v); open the address above yourself\n", err)
	}
	return nil
}

// protocolVersion adds the negotiated MCP-Protocol-Version header to
// every request after initialization, as the specification asks of
// clients; the relay learns the version from the initialize result.
type protocolVersion struct {
	next    http.RoundTripper
	version atomic.Pointer[string]
}

func (p *protocolVersion) RoundTrip(req *http.Request) (*http.Response, error) {
	if v := p.version.Load(); v != nil && req.Header.Get("Mcp-Protocol-Version") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Mcp-Protocol-Version", *v)
	}
	return p.next.RoundTrip(req)
}

// relay copies messages both ways.
type relay struct {
	local mcp.Connection
	// dial opens a new connection to the remote, when its session
	// expired.
	dial func(context.Context) (mcp.Connection, error)
	pv   *protocolVersion
	log  *slog.Logger
	sem  chan struct{}

	mu      sync.Mutex
	remote  mcp.Connection      // the current remote connection
	initIDs map[jsonrpc.ID]bool // pending initialize requests
	// init is the host's initialize request, replayed when the remote
	// session expires; initialized reports whether the host sent
	// notifications/initialized.
	init        *jsonrpc.Request
	initialized bool
	// pending are the host's requests sent to the current remote and
	// not answered yet.
	pending map[jsonrpc.ID]bool
	reinits int
	wg      sync.WaitGroup
}

// current returns the current remote connection.
func (r *relay) current() mcp.Connection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remote
}

// closeRemote closes the current remote connection.
func (r *relay) closeRemote() error { return r.current().Close() }

func (r *relay) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.initIDs = map[jsonrpc.ID]bool{}
	r.pending = map[jsonrpc.ID]bool{}
	errc := make(chan error, 2)
	go func() { errc <- r.fromHost(ctx) }()
	go func() { errc <- r.fromRemote(ctx) }()
	err := <-errc
	cancel()
	r.closeRemote()
	r.local.Close()
	<-errc
	r.wg.Wait()
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || errors.Is(err, mcp.ErrConnectionClosed) {
		return nil
	}
	return err
}

// fromHost sends the host's messages to the remote. Requests other than
// initialize are sent concurrently (their responses may take long), the
// rest in order.
func (r *relay) fromHost(ctx context.Context) error {
	for {
		msg, err := r.local.Read(ctx)
		if err != nil {
			return err
		}
		req, ok := msg.(*jsonrpc.Request)
		if !ok || req.IsNotification() {
			if ok && req.Method == mcp.NotificationInitialized {
				r.mu.Lock()
				r.initialized = true
				r.mu.Unlock()
			}
			if err := r.current().Write(ctx, msg); err != nil {
				r.log.Warn("sending a message to the remote failed", "error", err)
			}
			continue
		}
		if req.Method == mcp.MethodInitialize {
			// Sent before anything that follows it: once Write returns,
			// the remote's session id is known, and a host that does not
			// wait for the result before its next message is served too.
			r.mu.Lock()
			r.initIDs[req.ID] = true
			r.init = req
			r.mu.Unlock()
			if err := r.current().Write(ctx, req); err != nil {
				r.log.Warn("sending initialize to the remote failed", "error", err)
				r.answer(ctx, req.ID, err)
			}
			continue
		}
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.wg.Add(1)
		go func() {
			defer func() { <-r.sem; r.wg.Done() }()
			r.mu.Lock()
			remote := r.remote
			r.pending[req.ID] = true
			r.mu.Unlock()
			if err := remote.Write(ctx, req); err != nil {
				r.log.Warn("sending a request to the remote failed", "method", req.Method, "error", err)
				if r.settle(req.ID) {
					r.answer(ctx, req.ID, err)
				}
			}
		}()
	}
}

// answer tells the host that its request could not be sent.
func (r *relay) answer(ctx context.Context, id jsonrpc.ID, err error) {
	e := jsonrpc.NewError(jsonrpc.CodeInternalError, "mcpgate connect: the remote server could not be reached: %v", err)
	if werr := r.local.Write(ctx, &jsonrpc.Response{ID: id, Error: e}); werr != nil {
		r.log.Debug("answering the host failed", "error", werr)
	}
}

// settle marks a host request answered and reports whether it was
// still pending.
func (r *relay) settle(id jsonrpc.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.pending[id]
	delete(r.pending, id)
	return was
}

// fromRemote writes the remote's messages to the host. When the remote
// says the session expired, it starts a new one (reinitialize).
func (r *relay) fromRemote(ctx context.Context) error {
	for {
		msg, err := r.current().Read(ctx)
		if err != nil {
			if errors.Is(err, mcp.ErrSessionExpired) && ctx.Err() == nil {
				if rerr := r.reinitialize(ctx); rerr == nil {
					continue
				} else {
					err = fmt.Errorf("%w; starting a new session failed: %w", err, rerr)
				}
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, mcp.ErrConnectionClosed) && ctx.Err() == nil {
				r.log.Error("the remote session ended", "error", err)
			}
			return err
		}
		if resp, ok := msg.(*jsonrpc.Response); ok {
			r.settle(resp.ID)
			r.noteInitialized(resp)
		}
		if err := r.local.Write(ctx, msg); err != nil {
			return err
		}
	}
}

// MaxReinitializations bounds how many times one run starts a new remote
// session after the previous one expired.
const MaxReinitializations = 100

// reinitTimeout bounds one re-initialization.
const reinitTimeout = 2 * time.Minute

// reinitialize replaces an expired remote session with a new one,
// initialized with the host's own initialize request, so that the host
// keeps working. The host's requests that were waiting on the old
// session are answered with an error (the host may retry them).
func (r *relay) reinitialize(ctx context.Context) error {
	r.mu.Lock()
	init, initialized := r.init, r.initialized
	r.reinits++
	n := r.reinits
	pending := r.pending
	r.pending = map[jsonrpc.ID]bool{}
	old := r.remote
	r.mu.Unlock()
	old.Close()
	for id := range pending {
		r.answer(ctx, id, errors.New("the remote session expired; a new one was started, retry the request"))
	}
	if init == nil || n > MaxReinitializations {
		return fmt.Errorf("no initialize to replay, or more than %d expired sessions", MaxReinitializations)
	}
	ictx, cancel := context.WithTimeout(ctx, reinitTimeout)
	defer cancel()
	conn, err := r.dial(ctx)
	if err != nil {
		return err
	}
	req := *init
	req.ID = jsonrpc.StringID(fmt.Sprintf("mcpgate-connect-reinitialize-%d", n))
	if err := conn.Write(ictx, &req); err != nil {
		conn.Close()
		return err
	}
	for {
		msg, err := conn.Read(ictx)
		if err != nil {
			conn.Close()
			return err
		}
		if resp, ok := msg.(*jsonrpc.Response); ok && resp.ID == req.ID {
			if resp.Error != nil {
				conn.Close()
				return resp.Error
			}
			break
		}
		// Anything the server sends before its initialize result goes
		// to the host as usual.
		if err := r.local.Write(ctx, msg); err != nil {
			conn.Close()
			return err
		}
	}
	if initialized {
		if err := conn.Write(ictx, &jsonrpc.Request{Method: mcp.NotificationInitialized}); err != nil {
			conn.Close()
			return err
		}
	}
	r.mu.Lock()
	r.remote = conn
	r.mu.Unlock()
	r.log.Info("the remote session expired; a new one was started", "session", conn.SessionID())
	return nil
}

// noteInitialized records the protocol version of an initialize result.
func (r *relay) noteInitialized(resp *jsonrpc.Response) {
	r.mu.Lock()
	init := r.initIDs[resp.ID]
	delete(r.initIDs, resp.ID)
	r.mu.Unlock()
	if !init || resp.Error != nil {
		return
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(resp.Result, &res); err == nil && res.ProtocolVersion != "" && len(res.ProtocolVersion) < 64 {
		r.pv.version.Store(&res.ProtocolVersion)
	}
}
