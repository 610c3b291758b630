package resource

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for CacheOptions fields left zero.
const (
	// DefaultCacheEntries bounds the verified tokens a CachingVerifier
	// keeps (about 1 KB each).
	DefaultCacheEntries = 10000
	// DefaultRevocationPoll is how often CachingVerifier.Watch reads the
	// revocation version: a token revoked by another process is refused
	// within about this long.
	DefaultRevocationPoll = 250 * time.Millisecond
)

// CacheOptions configure a CachingVerifier.
type CacheOptions struct {
	// MaxEntries bounds the cache (0: DefaultCacheEntries). When it is
	// full, expired entries are dropped, then arbitrary ones.
	MaxEntries int
	// Now overrides the clock.
	Now func() time.Time
	// Logger receives failures to read the revocation version; nil means
	// slog.Default().
	Logger *slog.Logger
}

// CachingVerifier remembers the tokens another TokenVerifier accepted,
// keyed by the token itself (a map lookup: the runtime's string hash and
// one comparison, no cryptographic hash), until they expire, so that a
// token is verified (signature, claims, revocation lookup) once and not
// on every request: a cached token costs neither a signature check nor a
// query. Refused tokens are not cached. The cache holds the tokens it
// maps, as the requests carrying them do, until they expire or are
// dropped.
//
// Revocations must reach it: call Invalidate when a token is revoked in
// this process, and run Watch with a revocation version (a number that
// changes whenever a token is revoked, by any process) so that
// revocations made elsewhere empty the cache within one poll. After an
// invalidation every token is verified again once.
type CachingVerifier struct {
	next TokenVerifier
	opts CacheOptions
	log  *slog.Logger

	mu      sync.Mutex
	entries map[string]*Principal // by token
	// gen counts invalidations: a verification that started before one
	// is not cached.
	gen uint64
}

// NewCachingVerifier returns a verifier that caches what next accepts.
// opts may be nil.
func NewCachingVerifier(next TokenVerifier, opts *CacheOptions) *CachingVerifier {
	c := &CachingVerifier{next: next, entries: make(map[string]*Principal)}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.MaxEntries <= 0 {
		c.opts.MaxEntries = DefaultCacheEntries
	}
	if c.opts.Now == nil {
		c.opts.Now = time.Now
	}
	c.log = c.opts.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// Verify implements TokenVerifier. The Principal returned is a copy of
// the cached one; its slices are shared (with no spare capacity, so
// appending copies them) and their elements must not be modified.
func (c *CachingVerifier) Verify(ctx context.Context, token string) (*Principal, error) {
	now := c.opts.Now()
	c.mu.Lock()
	p, ok := c.entries[token]
	if ok && !now.Before(p.ExpiresAt) {
		delete(c.entries, token)
		ok = false
	}
	gen := c.gen
	c.mu.Unlock()
	if ok {
		cp := *p
		return &cp, nil
	}
	p, err := c.next.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if p.ExpiresAt.IsZero() || !now.Before(p.ExpiresAt) {
		// No expiry known (or within the leeway): not cached.
		return p, nil
	}
	cp := *p
	// A caller appending to a slice of its copy gets a new array.
	cp.Scopes, cp.Groups, cp.Roles = slices.Clip(cp.Scopes), slices.Clip(cp.Groups), slices.Clip(cp.Roles)
	c.mu.Lock()
	if c.gen == gen {
		c.makeRoom(now)
		c.entries[strings.Clone(token)] = &cp // not a slice of a larger header
	}
	c.mu.Unlock()
	return p, nil
}

// makeRoom drops entries until one more fits: the expired ones first,
// then arbitrary ones. c.mu is held.
func (c *CachingVerifier) makeRoom(now time.Time) {
	if len(c.entries) < c.opts.MaxEntries {
		return
	}
	for k, p := range c.entries {
		if !now.Before(p.ExpiresAt) {
			delete(c.entries, k)
		}
	}
	for k := range c.entries {
		if len(c.entries) < c.opts.MaxEntries {
			return
		}
		delete(c.entries, k)
	}
}

// Len returns the number of cached tokens.
func (c *CachingVerifier) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Invalidate empties the cache: every token is verified again, revocation
// included, at its next use. Call it when a token is revoked.
func (c *CachingVerifier) Invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// Watch reads version every interval (0: DefaultRevocationPoll) until ctx
// ends and empties the cache whenever the version changes. version is a
// number that changes whenever a token is revoked, by any process (for
// SQLite, sqlite.Store.TokenRevocationVersion). A failure to read it also
// empties the cache, so that a revocation is not missed; the failure is
// logged.
func (c *CachingVerifier) Watch(ctx context.Context, version func(context.Context) (int64, error), interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRevocationPoll
	}
	last, err := version(ctx)
	if err != nil {
		c.Invalidate()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := version(ctx)
		switch {
		case err != nil:
			if !errors.Is(err, context.Canceled) {
				c.log.Error("resource: reading the token revocation version; the token cache is emptied", "err", err)
			}
			c.Invalidate()
		case v != last:
			last = v
			c.Invalidate()
		}
	}
}
