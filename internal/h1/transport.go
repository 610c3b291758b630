// Package h1 is an HTTP/1.1 client transport that does a request's whole
// exchange on the caller's goroutine.
//
// The standard library's [net/http.Transport] gives every connection a
// read goroutine and a write goroutine; a request is handed to the writer
// and its response back from the reader, two goroutine hand-offs per round
// trip, and the reader keeps a read posted on every idle connection. For a
// gateway that forwards many small requests over loopback keep-alive
// connections those hand-offs are a visible share of its time. [Transport]
// instead writes the request and reads the response head on the goroutine
// that called [Transport.RoundTrip]; the body is read by whoever reads
// [net/http.Response.Body], and the connection goes back to the idle pool
// when the body has been read to its end.
//
// Only plain "http" requests without a proxy are served this way; anything
// else (https, a proxy from the environment, "Expect: 100-continue",
// protocol upgrades) goes to the fallback transport, so the behaviour a
// caller sees is that of net/http.
//
// Bounds: at most [Transport.MaxIdlePerHost] idle connections per host
// (default 256), each closed after [Transport.IdleTimeout] (default 90 s)
// of idleness when next taken from the pool; response heads are limited to
// [Transport.MaxHeaderBytes] (default 1 MiB).
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Transport is an [net/http.RoundTripper] for plain HTTP/1.1 requests; see
// the package documentation. The zero value is ready to use; a Transport
// must not be copied after first use.
type Transport struct {
	// Fallback serves the requests Transport does not (https, proxies,
	// upgrades, Expect). Nil means [net/http.DefaultTransport].
	Fallback http.RoundTripper
	// Proxy reports the proxy for a request, as in [net/http.Transport].
	// A request with a proxy goes to Fallback. Nil means
	// [net/http.ProxyFromEnvironment].
	Proxy func(*http.Request) (*url.URL, error)
	// DialContext dials connections. Nil means a [net.Dialer] with a 30 s
	// timeout and 30 s keep-alive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdlePerHost bounds the idle connections kept per host (0 means 256).
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection is kept (0 means 90 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a response head (0 means 1 MiB).
	MaxHeaderBytes int

	mu     sync.Mutex
	idle   map[string][]*conn
	closed bool
}

// conn is one connection with its buffers.
type conn struct {
	t      *Transport
	key    string
	nc     net.Conn
	lim    headLimit
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// RoundTrip implements [net/http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		return t.fallback().RoundTrip(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	key := canonicalAddr(req)
	c, reused, err := t.get(ctx, key)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	// A cancelled context ends the exchange by making the connection's
	// reads and writes fail at once; the connection is then not reused.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	resp, err := c.exchange(req)
	if err != nil {
		stop()
		c.nc.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		} else if reused && errors.Is(err, io.EOF) {
			err = errors.New("h1: the server closed a kept-alive connection before answering: " + err.Error())
		}
		return nil, err
	}
	keep := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		// Nothing to read (a 202 or 204, Content-Length 0): the
		// connection is free now, whether or not the caller closes the
		// body.
		if stop() && keep {
			t.put(c)
		} else {
			c.nc.Close()
		}
		return resp, nil
	}
	resp.Body = &body{rc: resp.Body, c: c, stop: stop, keep: keep}
	return resp, nil
}

// direct reports whether req is served here rather than by the fallback.
func (t *Transport) direct(req *http.Request) bool {
	if req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" {
		return false
	}
	if req.Header.Get("Expect") != "" || req.Header.Get("Upgrade") != "" {
		return false
	}
	proxy := t.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	if u, err := proxy(req); err != nil || u != nil {
		return false
	}
	return true
}

func (t *Transport) fallback() http.RoundTripper {
	if t.Fallback != nil {
		return t.Fallback
	}
	return http.DefaultTransport
}

// CloseIdleConnections closes the idle connections and those of the
// fallback transport.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.nc.Close()
		}
	}
	if ci, ok := t.fallback().(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// get returns an idle connection to key that is still open, or dials one.
func (t *Transport) get(ctx context.Context, key string) (c *conn, reused bool, err error) {
	now := time.Now()
	for {
		t.mu.Lock()
		cs := t.idle[key]
		if len(cs) == 0 {
			t.mu.Unlock()
			break
		}
		c = cs[len(cs)-1]
		cs[len(cs)-1] = nil
		t.idle[key] = cs[:len(cs)-1]
		t.mu.Unlock()
		if now.Sub(c.idleAt) < t.idleTimeout() && c.alive() {
			return c, true, nil
		}
		c.nc.Close()
	}
	dial := t.DialContext
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	nc, err := dial(ctx, "tcp", key)
	if err != nil {
		return nil, false, err
	}
	c = &conn{t: t, key: key, nc: nc, bw: bufio.NewWriterSize(nc, 4096)}
	c.lim.r = nc
	c.br = bufio.NewReaderSize(&c.lim, 4096)
	return c, false, nil
}

// put returns c to the idle pool, or closes it when the pool is full.
func (t *Transport) put(c *conn) {
	c.idleAt = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(map[string][]*conn)
	}
	if len(t.idle[c.key]) >= t.maxIdlePerHost() {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	t.idle[c.key] = append(t.idle[c.key], c)
	t.mu.Unlock()
}

func (t *Transport) maxIdlePerHost() int {
	if t.MaxIdlePerHost > 0 {
		return t.MaxIdlePerHost
	}
	return 256
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return 90 * time.Second
}

func (t *Transport) maxHeaderBytes() int64 {
	if t.MaxHeaderBytes > 0 {
		return int64(t.MaxHeaderBytes)
	}
	return 1 << 20
}

// alive reports whether an idle connection can carry a request: nothing
// was received on it while idle, neither the server's close nor stray
// bytes. See peekClosed for how it looks without waiting.
func (c *conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	return !peekClosed(c.nc)
}

// exchange writes req and reads the response head. Informational (1xx)
// responses other than 101 are skipped.
func (c *conn) exchange(req *http.Request) (*http.Response, error) {
	if err := req.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		c.lim.n = c.t.maxHeaderBytes()
		resp, err := http.ReadResponse(c.br, req)
		c.lim.n = -1
		if err != nil {
			if c.lim.over {
				err = errHeadTooLarge
			}
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
}

var errHeadTooLarge = errors.New("h1: the server's response head is over the size limit")

// headLimit is the connection's reader; while n is not negative it lets at
// most n more bytes through (the response head and what the buffer reads
// ahead of it), so that an endless head cannot take unbounded memory.
type headLimit struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		l.over = true
		return 0, errHeadTooLarge
	}
	p = p[:min(int64(len(p)), l.n)]
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// body returns the connection to the pool once read to its end.
type body struct {
	rc   io.ReadCloser
	c    *conn
	stop func() bool
	keep bool
	mu   sync.Mutex
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

// Close ends the body. A body not read to its end is drained when the rest
// has already arrived and is small (at most 64 KiB), so that the
// connection can be kept; otherwise the connection is closed.
func (b *body) Close() error {
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done {
		return nil
	}
	// Only what has already arrived is drained: a stream the server keeps
	// open must not hold Close.
	b.c.nc.SetReadDeadline(aLongTimeAgo)
	n, err := io.Copy(io.Discard, io.LimitReader(b.rc, maxDrain+1))
	b.c.nc.SetReadDeadline(time.Time{})
	b.finish(err == nil && n <= maxDrain)
	return nil
}

const maxDrain = 64 << 10

// finish releases the connection: to the pool after a complete body on a
// connection that may be kept, closed otherwise.
func (b *body) finish(complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	b.rc.Close()
	if b.stop() && complete && b.keep {
		b.c.t.put(b.c)
		return
	}
	b.c.nc.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// canonicalAddr is host:port of req's URL, port 80 by default.
func canonicalAddr(req *http.Request) string {
	host := req.URL.Host
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return net.JoinHostPort(host, "80")
}

var (
	aLongTimeAgo  = time.Unix(1, 0)
	defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
)
