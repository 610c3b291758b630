package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// countingVerifier accepts every token not in revoked, expiring at exp,
// and counts its calls.
type countingVerifier struct {
	calls   atomic.Int64
	revoked atomic.Bool // refuse every token
	exp     time.Time
	during  func() // called inside Verify, if set
}

func (v *countingVerifier) Verify(_ context.Context, tok string) (*resource.Principal, error) {
	v.calls.Add(1)
	if v.during != nil {
		v.during()
	}
	if v.revoked.Load() {
		return nil, fmt.Errorf("%w: token was revoked", resource.ErrInvalidToken)
	}
	return &resource.Principal{Subject: "alice", TokenID: tok, Scopes: []string{"read"}, ExpiresAt: v.exp}, nil
}

func TestCachingVerifierCachesUntilExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	inner := &countingVerifier{exp: now.Add(time.Minute)}
	c := resource.NewCachingVerifier(inner, &resource.CacheOptions{Now: func() time.Time { return now }})
	ctx := context.Background()
	for range 3 {
		p, err := c.Verify(ctx, "tok-a")
		if err != nil || p.Subject != "alice" || p.TokenID != "tok-a" {
			t.Fatalf("Verify: %+v, %v", p, err)
		}
	}
	if n := inner.calls.Load(); n != 1 {
		t.Fatalf("inner verifier called %d times for one token, want 1", n)
	}
	if _, err := c.Verify(ctx, "tok-b"); err != nil || inner.calls.Load() != 2 {
		t.Fatalf("another token: %v, %d calls", err, inner.calls.Load())
	}
	// A caller modifying its Principal does not modify the cache.
	p, _ := c.Verify(ctx, "tok-a")
	p.Subject = "mallory"
	if p, _ := c.Verify(ctx, "tok-a"); p.Subject != "alice" {
		t.Fatalf("cached principal modified: %q", p.Subject)
	}
	now = now.Add(time.Minute)
	if _, err := c.Verify(ctx, "tok-a"); err != nil || inner.calls.Load() != 3 {
		t.Fatalf("after expiry: %v, %d calls, want the token verified again", err, inner.calls.Load())
	}
}

// countingKeys counts signature checks.
type countingKeys struct {
	staticKeys
	n atomic.Int64
}

func (k *countingKeys) VerifySignature(ctx context.Context, tok string) ([]byte, error) {
	k.n.Add(1)
	return k.staticKeys.VerifySignature(ctx, tok)
}

// countingRevocation counts revocation lookups (the database query).
type countingRevocation struct{ n atomic.Int64 }

func (r *countingRevocation) IsRevoked(context.Context, string) (bool, error) {
	r.n.Add(1)
	return false, nil
}

// TestCachedTokenSkipsSignatureAndLookup: once a token is verified, its
// later uses check no signature and query no revocation.
func TestCachedTokenSkipsSignatureAndLookup(t *testing.T) {
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := &countingKeys{staticKeys: staticKeys{&a.key.PublicKey}}
	rev := &countingRevocation{}
	c := resource.NewCachingVerifier(resource.NewJWTVerifier(issuer, res, keys, &resource.JWTOptions{Revocation: rev}), nil)
	tok := a.token(t, "at+jwt")
	for i := range 100 {
		// A fresh copy each time, as each request's header is.
		p, err := c.Verify(context.Background(), string([]byte(tok)))
		if err != nil || p.Subject != "alice" {
			t.Fatalf("use %d: %v, %+v", i, err, p)
		}
	}
	if s, r := keys.n.Load(), rev.n.Load(); s != 1 || r != 1 {
		t.Fatalf("100 uses: %d signature checks and %d revocation lookups, want 1 and 1", s, r)
	}
	if _, err := c.Verify(context.Background(), tok+"x"); err == nil {
		t.Fatal("a token differing from a cached one by a suffix was accepted")
	}
}

func TestCachingVerifierRefusalsNotCached(t *testing.T) {
	inner := &countingVerifier{exp: time.Now().Add(time.Hour)}
	inner.revoked.Store(true)
	c := resource.NewCachingVerifier(inner, nil)
	for range 3 {
		if _, err := c.Verify(context.Background(), "tok"); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := inner.calls.Load(); n != 3 || c.Len() != 0 {
		t.Fatalf("%d calls, %d cached; want 3 and 0", n, c.Len())
	}
}

func TestCachingVerifierInvalidate(t *testing.T) {
	inner := &countingVerifier{exp: time.Now().Add(time.Hour)}
	c := resource.NewCachingVerifier(inner, nil)
	ctx := context.Background()
	if _, err := c.Verify(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	inner.revoked.Store(true)
	c.Invalidate()
	if _, err := c.Verify(ctx, "tok"); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("after revocation and Invalidate: %v, want refused", err)
	}
	// A verification that overlaps an invalidation is not cached: the
	// revocation may have happened after its lookup.
	inner.revoked.Store(false)
	inner.during = c.Invalidate
	if _, err := c.Verify(ctx, "tok2"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Fatalf("%d cached after an overlapping invalidation, want 0", c.Len())
	}
}

func TestCachingVerifierBounded(t *testing.T) {
	inner := &countingVerifier{exp: time.Now().Add(time.Hour)}
	c := resource.NewCachingVerifier(inner, &resource.CacheOptions{MaxEntries: 3})
	for i := range 10 {
		if _, err := c.Verify(context.Background(), fmt.Sprint("tok-", i)); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 3 {
			t.Fatalf("%d cached, bound 3", c.Len())
		}
	}
}

// TestCachingVerifierWatch checks, on a fake clock, that a change of the
// revocation version empties the cache within one poll.
func TestCachingVerifierWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &countingVerifier{exp: time.Now().Add(time.Hour)}
		c := resource.NewCachingVerifier(inner, nil)
		var version atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Watch(ctx, func(context.Context) (int64, error) { return version.Load(), nil }, 0)
		}()
		if _, err := c.Verify(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * resource.DefaultRevocationPoll)
		synctest.Wait()
		if c.Len() != 1 {
			t.Fatal("the cache was emptied without a revocation")
		}
		// Another process revokes the token.
		inner.revoked.Store(true)
		version.Add(1)
		revokedAt := time.Now()
		for {
			if _, err := c.Verify(ctx, "tok"); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// One poll, plus the 10 ms step of the loop above.
		if d, want := time.Since(revokedAt), resource.DefaultRevocationPoll+10*time.Millisecond; d > want {
			t.Errorf("refused %v after the revocation, want within %v", d, want)
		}
		cancel()
		<-done
	})
}

// TestRevokedByAnotherProcess revokes a cached token through a second
// handle on the same SQLite file (as mcpgate revoke does from its own
// process) and measures how long the gateway's verifier keeps accepting
// it; in-process revocations (OnTokenRevoked) take effect at once.
func TestRevokedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	gw, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	cli, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	now := time.Now()
	for _, id := range []string{"t-1", "t-2"} {
		if err := gw.RecordAccessToken(ctx, &store.AccessToken{ID: id, FamilyID: "f-" + id, ClientID: "app", Subject: "alice", Resource: res, Scope: "read", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := resource.NewCachingVerifier(resource.NewJWTVerifier(issuer, res, staticKeys{&a.key.PublicKey},
		&resource.JWTOptions{Revocation: storeRevocation{gw}}), nil)
	gw.OnTokenRevoked(c.Invalidate)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	// The watch's first read of the version is its baseline: the test
	// revokes only after it, or the revocation would be counted in it.
	baseline := make(chan struct{})
	var once sync.Once
	version := func(ctx context.Context) (int64, error) {
		v, err := gw.TokenRevocationVersion(ctx)
		once.Do(func() { close(baseline) })
		return v, err
	}
	go func() { defer close(done); c.Watch(wctx, version, 0) }()
	defer func() { cancel(); <-done }()
	<-baseline

	tok1 := a.token(t, "at+jwt")
	tok2 := a.token(t, "at+jwt", func(m map[string]any) { m["jti"] = "t-2" })
	for _, tok := range []string{tok1, tok2} {
		if _, err := c.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	// In this process: refused at once.
	if err := gw.RevokeAccessToken(ctx, "t-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, tok2); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("token revoked in-process still accepted: %v", err)
	}
	// From another process: refused after the next poll.
	if _, err := c.Verify(ctx, tok1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := cli.RevokeFamily(ctx, "f-t-1"); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.Verify(ctx, tok1)
		if errors.Is(err, resource.ErrInvalidToken) {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("token revoked by another process still accepted after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("token revoked by another process refused after %v (poll every %v)", time.Since(start), resource.DefaultRevocationPoll)
}

type storeRevocation struct{ st *sqlite.Store }

func (s storeRevocation) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return s.st.IsAccessTokenRevoked(ctx, jti)
}

// BenchmarkTokenVerify compares verifying an ES256 access token with a
// revocation lookup in SQLite on every request (cold: what every request
// cost before the cache) with the cached path.
func BenchmarkTokenVerify(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "mcpgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.RecordAccessToken(ctx, &store.AccessToken{ID: "t-1", ClientID: "app", Subject: "alice", Resource: res, Scope: "read", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	a := &fakeAS{}
	a.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwt := resource.NewJWTVerifier(issuer, res, staticKeys{&a.key.PublicKey}, &resource.JWTOptions{Revocation: storeRevocation{st}})
	tok := a.token(b, "at+jwt")
	for _, bc := range []struct {
		name string
		v    resource.TokenVerifier
	}{
		{"cold", jwt},
		{"cached", resource.NewCachingVerifier(jwt, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignatureVerify measures the signature check of a compact JWS
// access token with the issuer's algorithm (ES256) and with EdDSA
// (Ed25519), which the built-in authorization server does not use.
func BenchmarkSignatureVerify(b *testing.B) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	payload := []byte(`{"iss":"https://as.example.test","sub":"alice","aud":"https://gw.example.test/mcp","jti":"t-1","exp":4102444800}`)
	for _, bc := range []struct {
		alg       jose.SignatureAlgorithm
		priv, pub any
	}{
		{jose.ES256, ec, &ec.PublicKey},
		{jose.EdDSA, edPriv, edPub},
	} {
		b.Run(string(bc.alg), func(b *testing.B) {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: bc.alg, Key: bc.priv}, nil)
			if err != nil {
				b.Fatal(err)
			}
			jws, err := s.Sign(payload)
			if err != nil {
				b.Fatal(err)
			}
			tok, _ := jws.CompactSerialize()
			b.ReportAllocs()
			for b.Loop() {
				j, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{bc.alg})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := j.Verify(bc.pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
