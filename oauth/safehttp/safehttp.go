// Package safehttp builds HTTP clients for fetching URLs that come from
// untrusted input: OAuth discovery documents, authorization server
// endpoints, Client ID Metadata Documents and the like. It defends against
// server-side request forgery (SSRF) in three places:
//
//   - Dial time. Every connection goes through a net.Dialer whose Control
//     hook inspects the IP address actually being connected to, after DNS
//     resolution, and refuses loopback, private (RFC 1918, RFC 4193 unique
//     local, RFC 6598 carrier-grade NAT), link-local, cloud metadata
//     service (169.254.169.254, fd00:ec2::254, 100.100.100.200),
//     unspecified, multicast, broadcast, documentation/benchmarking and
//     other reserved addresses unless an option allows them. Because the
//     check is on the dialled address, not on the host name, a name that
//     resolves to a public address at validation time and to a private one
//     later (DNS rebinding) is still refused. IPv4-mapped, NAT64 and 6to4
//     IPv6 addresses are checked against the IPv4 address they embed.
//     Proxies from the environment are never used, since the dial check
//     would then only see the proxy.
//   - Request time. Only https URLs are fetched; plain http is allowed only
//     for loopback hosts ("localhost", "*.localhost", 127.0.0.0/8, ::1) and
//     only when Options.AllowInsecureLoopback is set. URLs with user info
//     are refused.
//   - Redirects. By default a redirect is followed only when it stays on
//     the same origin (scheme, host and port), at most MaxRedirects times;
//     Options.NoRedirects refuses every redirect.
//
// Responses should be read with ReadBody, which caps the size.
//
// Both the MCP authorization client (discovery and token requests) and the
// authorization server (fetching Client ID Metadata Documents) use it.
package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Default limits.
const (
	// DefaultTimeout bounds a whole request including reading the body.
	DefaultTimeout = 30 * time.Second
	// DefaultDialTimeout bounds establishing one TCP connection.
	DefaultDialTimeout = 10 * time.Second
	// MaxRedirects is the most same-origin redirects followed.
	MaxRedirects = 5
	// DefaultMaxBodyBytes is the ReadBody cap used when 0 is passed.
	DefaultMaxBodyBytes = 1 << 20
)

// Options configures a safe client. The zero value (or nil) is the most
// restrictive: public addresses only, https only, same-origin redirects.
type Options struct {
	// AllowLoopback permits connections to 127.0.0.0/8 and ::1.
	AllowLoopback bool
	// AllowPrivate permits RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 4193
	// unique local (fc00::/7) and carrier-grade NAT (100.64/10) addresses,
	// except the cloud metadata addresses inside them.
	AllowPrivate bool
	// AllowedCIDRs are always permitted, overriding every other rule
	// (including link-local and metadata addresses). Use sparingly.
	AllowedCIDRs []netip.Prefix
	// AllowInsecureLoopback permits plain http URLs whose host is a
	// loopback host ("localhost", "*.localhost" or a loopback IP literal).
	// The dial check still applies, so AllowLoopback is needed as well.
	AllowInsecureLoopback bool
	// NoRedirects refuses all redirects instead of following same-origin
	// ones.
	NoRedirects bool
	// Timeout bounds each whole request; 0 means DefaultTimeout.
	Timeout time.Duration
	// DialTimeout bounds each connection attempt; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// TLSClientConfig is used for https connections (e.g. custom roots in
	// tests); nil means the system defaults.
	TLSClientConfig *tls.Config
	// LookupNetIP resolves host names; nil means net.DefaultResolver. Tests
	// use it to simulate DNS answers (including rebinding) without any
	// network traffic. The dial check applies to whatever it returns.
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// BlockedError reports a connection refused by the dial-time check.
type BlockedError struct {
	// Addr is the address that was about to be dialled.
	Addr netip.Addr
	// Reason names the address class, e.g. "link-local".
	Reason string
}

// Error describes the refusal.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("safehttp: refusing to connect to %s (%s address)", e.Addr, e.Reason)
}

// ErrRedirect is wrapped by errors for refused redirects.
var ErrRedirect = errors.New("safehttp: redirect refused")

// ErrInsecureURL is wrapped by errors for refused URLs (wrong scheme, user
// info, plain http to a non-loopback host).
var ErrInsecureURL = errors.New("safehttp: insecure URL")

// ErrBodyTooLarge is wrapped by ReadBody when the body exceeds the cap.
var ErrBodyTooLarge = errors.New("safehttp: response body too large")

type rangeRule struct {
	prefix netip.Prefix
	reason string
	class  int
}

const (
	classAlwaysBlocked = iota
	classLoopback
	classPrivate
)

// rules lists the refused ranges; metadata addresses come before the
// private ranges that contain them so that AllowPrivate does not unlock
// them.
var rules = func() []rangeRule {
	r := func(s, reason string, class int) rangeRule {
		return rangeRule{netip.MustParsePrefix(s), reason, class}
	}
	return []rangeRule{
		r("169.254.169.254/32", "metadata-service", classAlwaysBlocked),
		r("fd00:ec2::254/128", "metadata-service", classAlwaysBlocked),
		r("100.100.100.200/32", "metadata-service", classAlwaysBlocked),
		r("127.0.0.0/8", "loopback", classLoopback),
		r("::1/128", "loopback", classLoopback),
		r("10.0.0.0/8", "private", classPrivate),
		r("172.16.0.0/12", "private", classPrivate),
		r("192.168.0.0/16", "private", classPrivate),
		r("fc00::/7", "private", classPrivate),
		r("100.64.0.0/10", "carrier-grade NAT", classPrivate),
		r("0.0.0.0/8", "unspecified", classAlwaysBlocked),
		r("::/128", "unspecified", classAlwaysBlocked),
		r("169.254.0.0/16", "link-local", classAlwaysBlocked),
		r("fe80::/10", "link-local", classAlwaysBlocked),
		r("224.0.0.0/4", "multicast", classAlwaysBlocked),
		r("ff00::/8", "multicast", classAlwaysBlocked),
		r("240.0.0.0/4", "reserved", classAlwaysBlocked), // includes 255.255.255.255
		r("192.0.0.0/24", "reserved", classAlwaysBlocked),
		r("192.0.2.0/24", "documentation", classAlwaysBlocked),
		r("198.51.100.0/24", "documentation", classAlwaysBlocked),
		r("203.0.113.0/24", "documentation", classAlwaysBlocked),
		r("2001:db8::/32", "documentation", classAlwaysBlocked),
		r("198.18.0.0/15", "benchmarking", classAlwaysBlocked),
		r("100::/64", "discard", classAlwaysBlocked),
		r("fec0::/10", "site-local", classAlwaysBlocked),
	}
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4      = netip.MustParsePrefix("2002::/16")
)

// CheckAddr reports whether a connection to ip is allowed under opts (nil
// means the zero Options). It returns a *BlockedError if not.
func CheckAddr(ip netip.Addr, opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return &BlockedError{Addr: ip, Reason: "invalid"}
	}
	for _, p := range opts.AllowedCIDRs {
		if p.Contains(ip) || (ip.Is4In6() && p.Contains(ip.Unmap())) {
			return nil
		}
	}
	if ip.Is4In6() {
		return CheckAddr(ip.Unmap(), opts)
	}
	if ip.Is6() {
		if nat64Prefix.Contains(ip) {
			b := ip.As16()
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[12:16])), opts); err != nil {
				return err
			}
		}
		if sixTo4.Contains(ip) {
			b := ip.As16()
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[2:6])), opts); err != nil {
				return err
			}
		}
	}
	for _, r := range rules {
		if !r.prefix.Contains(ip) {
			continue
		}
		switch {
		case r.class == classLoopback && opts.AllowLoopback:
			return nil
		case r.class == classPrivate && opts.AllowPrivate:
			return nil
		}
		return &BlockedError{Addr: ip, Reason: r.reason}
	}
	return nil
}

// IsLoopbackHost reports whether host (without port) names the local
// machine: "localhost", a name under ".localhost", or a loopback IP.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.Unmap().IsLoopback()
	}
	return false
}

// CheckURL reports whether u may be fetched under opts: https, or http to a
// loopback host with AllowInsecureLoopback; no user info. The error wraps
// ErrInsecureURL.
func CheckURL(u *url.URL, opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	if u.User != nil {
		return fmt.Errorf("%w: %s: user info not allowed", ErrInsecureURL, redact(u))
	}
	if u.Host == "" {
		return fmt.Errorf("%w: %s: missing host", ErrInsecureURL, redact(u))
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if opts.AllowInsecureLoopback && IsLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%w: %s: https required", ErrInsecureURL, redact(u))
	default:
		return fmt.Errorf("%w: %s: unsupported scheme %q", ErrInsecureURL, redact(u), u.Scheme)
	}
}

func redact(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// NewTransport returns a RoundTripper that enforces CheckURL on every
// request and dials only addresses allowed by CheckAddr. It never uses a
// proxy.
func NewTransport(opts *Options) http.RoundTripper {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	dialTimeout := o.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = DefaultDialTimeout
	}
	d := &dialer{opts: &o, d: &net.Dialer{
		Timeout: dialTimeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("safehttp: unexpected dial address %q: %w", address, err)
			}
			return CheckAddr(ap.Addr(), &o)
		},
	}}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.dialContext,
		TLSClientConfig:       o.TLSClientConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &checkingTransport{opts: &o, next: t}
}

// NewClient returns an *http.Client using NewTransport(opts), the redirect
// policy of opts and its overall timeout.
func NewClient(opts *Options) *http.Client {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Transport:     NewTransport(&o),
		Timeout:       timeout,
		CheckRedirect: RedirectPolicy(&o),
	}
}

// RedirectPolicy returns an http.Client CheckRedirect function implementing
// opts: no redirects when NoRedirects, otherwise same-origin redirects
// only, at most MaxRedirects. Refusals wrap ErrRedirect.
func RedirectPolicy(opts *Options) func(req *http.Request, via []*http.Request) error {
	noRedirects := opts != nil && opts.NoRedirects
	return func(req *http.Request, via []*http.Request) error {
		if noRedirects {
			return fmt.Errorf("%w: to %s", ErrRedirect, redact(req.URL))
		}
		if len(via) >= MaxRedirects {
			return fmt.Errorf("%w: more than %d redirects", ErrRedirect, MaxRedirects)
		}
		if !sameOrigin(req.URL, via[0].URL) {
			return fmt.Errorf("%w: cross-origin redirect from %s to %s", ErrRedirect, redact(via[0].URL), redact(req.URL))
		}
		return nil
	}
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

type checkingTransport struct {
	opts *Options
	next http.RoundTripper
}

func (t *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := CheckURL(req.URL, t.opts); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

type dialer struct {
	opts *Options
	d    *net.Dialer
}

// dialContext resolves the host itself (so that tests can substitute DNS),
// checks every candidate address before dialling, and dials with the
// Control hook as a second check on the exact address being connected.
func (d *dialer) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := d.opts.LookupNetIP
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		addrs, err = lookup(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("safehttp: resolving %q: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("safehttp: resolving %q: no addresses", host)
		}
	}
	var firstErr error
	for _, a := range addrs {
		if err := CheckAddr(a, d.opts); err != nil {
			firstErr = errors.Join(firstErr, err)
			continue
		}
		conn, err := d.d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		firstErr = errors.Join(firstErr, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// ReadBody reads resp.Body up to max bytes (DefaultMaxBodyBytes if max <= 0)
// and closes it. A longer body gives an error wrapping ErrBodyTooLarge.
func ReadBody(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	return ReadLimited(resp.Body, max)
}

// ReadLimited reads r up to max bytes (DefaultMaxBodyBytes if max <= 0). A
// longer input gives an error wrapping ErrBodyTooLarge.
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("safehttp: reading body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, max)
	}
	return b, nil
}
