package authserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// Admission modes of a registration path (AdmissionPolicy.Mode).
const (
	// AdmissionOpen admits every client of the path.
	AdmissionOpen = "open"
	// AdmissionAllowlist admits only the clients AdmissionPolicy.Allow
	// names.
	AdmissionAllowlist = "allowlist"
	// AdmissionApproval stores new clients of the path as pending; they
	// obtain no token until an administrator approves them.
	AdmissionApproval = "approval"
	// AdmissionClosed admits no client of the path, except those an
	// administrator approved.
	AdmissionClosed = "closed"
)

// AdmissionPolicy decides which clients of one registration path (Client
// ID Metadata Documents, dynamic registration or pre-registration) are
// admitted and which grant types they may obtain. Whatever the mode, a
// client an administrator refused obtains nothing, and a client waiting
// for approval neither.
type AdmissionPolicy struct {
	// Mode is AdmissionOpen (the default when empty), AdmissionAllowlist,
	// AdmissionApproval or AdmissionClosed.
	Mode string
	// Allow names the clients admitted in AdmissionAllowlist mode.
	// Metadata documents: URL prefixes of the client_id
	// ("https://apps.example.com/mcp/", matched at a path boundary) or
	// hosts ("apps.example.com"; "*.example.com" for every subdomain).
	// Dynamic registration: the same forms, matched against every
	// redirect URI of the registration (which must have at least one).
	// Pre-registered clients: client ids.
	Allow []string
	// GrantTypes are the grant types clients of the path may obtain. nil
	// means the default: authorization_code and refresh_token for the
	// self-asserted paths (metadata documents and dynamic registration),
	// every grant for pre-registered clients. client_credentials and
	// jwt-bearer are never granted to a self-asserted client unless
	// listed here.
	GrantTypes []string
}

// RateLimit is a token bucket: Burst requests at once, refilled at
// PerMinute requests a minute.
type RateLimit struct {
	// PerMinute is the refill rate; 0 means 10. Negative turns the limit
	// off.
	PerMinute float64
	// Burst is the bucket's size; 0 means 20.
	Burst int
}

// selfAssertedGrants are the grants a self-asserted client may obtain by
// default.
var selfAssertedGrants = []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}

// allGrants are the grants a pre-registered client may obtain by default.
var allGrants = []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials, meta.GrantTypeJWTBearer}

func validAdmission(where string, p *AdmissionPolicy) error {
	switch p.Mode {
	case "", AdmissionOpen, AdmissionApproval, AdmissionClosed:
		if len(p.Allow) > 0 {
			return fmt.Errorf("authserver: %s: Allow is only used in allowlist mode", where)
		}
	case AdmissionAllowlist:
		if len(p.Allow) == 0 {
			return fmt.Errorf("authserver: %s: allowlist mode with an empty Allow list", where)
		}
	default:
		return fmt.Errorf("authserver: %s: unknown admission mode %q (want open, allowlist, approval or closed)", where, p.Mode)
	}
	for _, g := range p.GrantTypes {
		if !slices.Contains(allGrants, g) {
			return fmt.Errorf("authserver: %s: unknown grant type %q", where, g)
		}
	}
	return nil
}

// pathName names a client kind's registration path in messages and in
// the gateway's configuration.
func pathName(kind string) string {
	switch kind {
	case store.ClientMetadataDocument:
		return "cimd"
	case store.ClientDynamic:
		return "dynamic"
	}
	return "pre_registered"
}

// admissionPolicy returns the policy of a client kind's path.
func (s *Server) admissionPolicy(kind string) *AdmissionPolicy {
	switch kind {
	case store.ClientMetadataDocument:
		return &s.opts.MetadataDocuments.Admission
	case store.ClientDynamic:
		return &s.opts.Registration.Admission
	}
	return &s.opts.PreRegistered
}

// pathGrants returns the grant types clients of kind may obtain.
func (s *Server) pathGrants(kind string) []string {
	p := s.admissionPolicy(kind)
	if p.GrantTypes != nil {
		return p.GrantTypes
	}
	if kind == store.ClientMetadataDocument || kind == store.ClientDynamic {
		return selfAssertedGrants
	}
	return allGrants
}

func mode(p *AdmissionPolicy) string {
	if p.Mode == "" {
		return AdmissionOpen
	}
	return p.Mode
}

// pathClosed reports whether a path admits no new client at all.
func (s *Server) pathClosed(kind string) bool {
	return mode(s.admissionPolicy(kind)) == AdmissionClosed
}

// allowEntryMatches matches a URL against one Allow entry: a URL prefix
// (at a path boundary) or a host ("*.example.com" for subdomains).
func allowEntryMatches(entry string, u *url.URL) bool {
	if strings.Contains(entry, "://") {
		p, err := url.Parse(entry)
		if err != nil || !strings.EqualFold(p.Scheme, u.Scheme) || !strings.EqualFold(p.Host, u.Host) {
			return false
		}
		prefix, path := p.EscapedPath(), u.EscapedPath()
		if prefix == "" || prefix == "/" {
			return true
		}
		if !strings.HasPrefix(path, prefix) {
			return false
		}
		return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if strings.Contains(entry, ":") && !strings.HasPrefix(entry, "[") && strings.Count(entry, ":") == 1 {
		// host:port
		return strings.EqualFold(entry, u.Host)
	}
	entry = strings.ToLower(strings.Trim(strings.TrimSuffix(entry, "."), "[]"))
	if d, ok := strings.CutPrefix(entry, "*."); ok {
		return strings.HasSuffix(host, "."+d)
	}
	return host == entry
}

func allowListMatches(allow []string, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	return slices.ContainsFunc(allow, func(e string) bool { return allowEntryMatches(e, u) })
}

// allowlisted reports whether the allowlist of c's path names c.
func (s *Server) allowlisted(c *store.Client) bool {
	p := s.admissionPolicy(c.Kind)
	switch c.Kind {
	case store.ClientMetadataDocument:
		return allowListMatches(p.Allow, c.ID)
	case store.ClientDynamic:
		if len(c.RedirectURIs) == 0 {
			return false
		}
		for _, ru := range c.RedirectURIs {
			if !allowListMatches(p.Allow, ru) {
				return false
			}
		}
		return true
	}
	return slices.Contains(p.Allow, c.ID)
}

// approveHint tells the user how an administrator admits a client.
func approveHint(id string) string {
	return fmt.Sprintf("an administrator must approve it first (mcpgate client approve %s)", id)
}

// admitClient decides whether a known client may obtain a token with
// grantType ("" to check the client alone). The error is an OAuth
// unauthorized_client (or access_denied for a refused client) with a
// description the user can act on.
func (s *Server) admitClient(c *store.Client, grantType string) error {
	path := pathName(c.Kind)
	switch c.Status {
	case store.ClientRefused:
		return oauthErr(http.StatusBadRequest, meta.ErrUnauthorizedClient, "client %q was refused by an administrator", c.ID)
	case store.ClientPending:
		return errUnauthorizedClient("client %q is waiting for approval: %s", c.ID, approveHint(c.ID))
	}
	p := s.admissionPolicy(c.Kind)
	if c.Status != store.ClientApproved {
		switch mode(p) {
		case AdmissionClosed:
			return errUnauthorizedClient("clients registered through %s are not accepted by this server (oauth.clients.%s.mode is closed)", pathLabel(c.Kind), path)
		case AdmissionApproval:
			return errUnauthorizedClient("client %q is not approved: %s", c.ID, approveHint(c.ID))
		case AdmissionAllowlist:
			if !s.allowlisted(c) {
				return errUnauthorizedClient("client %q is not on the allow list for clients registered through %s (oauth.clients.%s.allow)", c.ID, pathLabel(c.Kind), path)
			}
		}
	}
	if grantType != "" && !slices.Contains(s.pathGrants(c.Kind), grantType) {
		return errUnauthorizedClient("the %s grant is not allowed for clients registered through %s (oauth.clients.%s.grant_types)", grantType, pathLabel(c.Kind), path)
	}
	return nil
}

// pathLabel describes a registration path for people.
func pathLabel(kind string) string {
	switch kind {
	case store.ClientMetadataDocument:
		return "a client ID metadata document"
	case store.ClientDynamic:
		return "dynamic registration"
	}
	return "pre-registration"
}

// newClientStatus is the Status a new self-asserted client is stored
// with.
func (s *Server) newClientStatus(kind string) string {
	if mode(s.admissionPolicy(kind)) == AdmissionApproval {
		return store.ClientPending
	}
	return ""
}

// markUsed records that a client obtained a token, so that the sweep of
// unused registrations keeps it.
func (s *Server) markUsed(ctx context.Context, c *store.Client) {
	if !c.FirstUsedAt.IsZero() {
		return
	}
	if err := s.st.MarkClientUsed(ctx, c.ID, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(ctx, "oauth: recording a client's first use", "client_id", c.ID, "err", err)
	}
}

// DeleteUnusedClients removes dynamically registered clients that never
// obtained a token within RegistrationPolicy.UnusedClientTTL of their
// registration (and that no administrator approved); run it periodically
// (RunSweeper does).
func (s *Server) DeleteUnusedClients(ctx context.Context) (int, error) {
	return s.st.DeleteUnusedClients(ctx, store.ClientDynamic, s.now().Add(-s.opts.Registration.UnusedClientTTL))
}

// RunSweeper deletes expired codes, tokens and sessions (DeleteExpired)
// and unused dynamic registrations (DeleteUnusedClients) every interval
// (0 means 10 minutes) until ctx is done.
func (s *Server) RunSweeper(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.DeleteUnusedClients(ctx); err != nil {
			s.log.WarnContext(ctx, "oauth: collecting unused client registrations", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "oauth: unused client registrations collected", "count", n)
		}
		if _, err := s.DeleteExpired(ctx); err != nil {
			s.log.WarnContext(ctx, "oauth: deleting expired records", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rateLimiter is a token bucket per source address, in one process.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are dropped first.
const maxBuckets = 10000

func newRateLimiter(l RateLimit) *rateLimiter {
	if l.PerMinute < 0 {
		return nil
	}
	per, burst := l.PerMinute, l.Burst
	if per == 0 {
		per = 10
	}
	if burst <= 0 {
		burst = 20
	}
	return &rateLimiter{rate: per / 60, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket; when it is empty it returns
// false and how long until a token is available.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// prune drops the buckets that have refilled; if none has, every bucket
// (a flood from that many addresses is limited by the storage bound).
func (l *rateLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// sourceAddress is the rate limit key of a request: the IP address of
// the peer (the port dropped; IPv6 addresses by their /64).
func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// retryAfter formats a wait for the Retry-After header (whole seconds,
// at least 1).
func retryAfter(d time.Duration) string {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
