package authserver_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// thumbprint is the RFC 7638 SHA-256 thumbprint of k's public key.
func thumbprint(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// keyRecorder is an Options.OnClientKeys that records what it is told
// and refuses while refuse is set.
type keyRecorder struct {
	mu     sync.Mutex
	seen   []authserver.ClientKeys
	refuse error
}

func (r *keyRecorder) hook(_ context.Context, k authserver.ClientKeys) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, k)
	return r.refuse
}

func (r *keyRecorder) last(t *testing.T) authserver.ClientKeys {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("OnClientKeys was not called")
	}
	return r.seen[len(r.seen)-1]
}

// TestClientKeysReported: every private_key_jwt authentication reports the
// key set and the key that verified the assertion; a key rotated behind
// jwks_uri is fetched again (at most every 10 s); the hook's refusal
// refuses the client with invalid_client; RecheckClient fetches the
// document and the keys again, bypassing the caches.
func TestClientKeysReported(t *testing.T) {
	var skew atomic.Int64
	rec := &keyRecorder{}
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.MetadataDocuments.Admission.GrantTypes = []string{"client_credentials"}
		o.OnClientKeys = rec.hook
		o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}})
	key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var served atomic.Pointer[[]byte]
	serve := func(k *ecdsa.PrivateKey, kid string) {
		b, _ := json.Marshal(map[string]any{"keys": []map[string]any{jwkOf(k, kid)}})
		served.Store(&b)
	}
	serve(key1, "k1")
	var jwksHits atomic.Int64
	jwksURL := e.cimdURL("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*served.Load())
	})
	var id string
	id = e.cimdURL("/agent.json", func(w http.ResponseWriter, r *http.Request) {
		serveDoc(`{"client_id":"`+id+`","client_name":"Agent","redirect_uris":["https://agent.example.test/cb"],"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"`+jwksURL+`"}`)(w, r)
	})
	n := 0
	token := func(k *ecdsa.PrivateKey, kid string) *tokenResp {
		n++
		a := signJWT(t, k, kid, "", map[string]any{"iss": id, "sub": id, "aud": e.issuer, "jti": "a" + string(rune('a'+n)), "exp": time.Now().Add(5 * time.Minute).Unix()})
		return e.token(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI},
			"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {a}}, "", "")
	}

	if tr := token(key1, "k1"); tr.Status != 200 {
		t.Fatalf("first token: %d %v", tr.Status, tr.Body)
	}
	if k := rec.last(t); k.ClientID != id || k.JWKSURI != jwksURL || k.Used != thumbprint(t, key1) || !strings.Contains(string(k.JWKS), `"k1"`) {
		t.Fatalf("reported %+v", k)
	}

	// The key behind jwks_uri is swapped. The cached set is fresh: an
	// assertion with the new key does not verify, and fetches nothing.
	serve(key2, "k2")
	hits := jwksHits.Load()
	if tr := token(key2, "k2"); tr.Status != 401 || tr.str("error") != meta.ErrInvalidClient {
		t.Fatalf("new key against a fresh cache: %d %v", tr.Status, tr.Body)
	}
	if jwksHits.Load() != hits {
		t.Error("an unknown key within 10 s of the last fetch fetched the key set again")
	}
	// 11 s later the set is fetched again, and the new key is reported.
	skew.Store(int64(11 * time.Second))
	if tr := token(key2, "k2"); tr.Status != 200 {
		t.Fatalf("rotated key: %d %v", tr.Status, tr.Body)
	}
	if k := rec.last(t); k.Used != thumbprint(t, key2) || !strings.Contains(string(k.JWKS), `"k2"`) {
		t.Fatalf("reported after rotation %+v", k)
	}

	// The hook refuses: invalid_client with its reason.
	rec.mu.Lock()
	rec.refuse = errors.New("its keys changed and await approval")
	rec.mu.Unlock()
	tr := token(key2, "k2")
	if tr.Status != 401 || tr.str("error") != meta.ErrInvalidClient || !strings.Contains(tr.str("error_description"), "its keys changed and await approval") {
		t.Fatalf("refused by the hook: %d %v", tr.Status, tr.Body)
	}
	rec.mu.Lock()
	rec.refuse = nil
	rec.mu.Unlock()

	// A re-check fetches the document and the key set, bypassing both
	// caches, and reports the keys without a used key.
	serve(key1, "k1")
	docHits, hits := e.cimdHits.Load(), jwksHits.Load()
	if err := e.as.RecheckClient(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if jwksHits.Load() != hits+1 || e.cimdHits.Load() < docHits+2 {
		t.Errorf("re-check fetched the key set %d times and the document and key set %d times, want 1 and 2", jwksHits.Load()-hits, e.cimdHits.Load()-docHits)
	}
	if k := rec.last(t); k.Used != "" || k.JWKSURI != jwksURL || !strings.Contains(string(k.JWKS), `"k1"`) {
		t.Fatalf("re-check reported %+v", k)
	}

	// A pre-registered client's registered keys are reported too.
	if tr := e.token(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI},
		"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion("pre-1")}}, "", ""); tr.Status != 200 {
		t.Fatalf("pre-registered client: %d %v", tr.Status, tr.Body)
	}
	if k := rec.last(t); k.ClientID != "jwtsvc" || k.JWKSURI != "" || k.Used != thumbprint(t, e.clientKey) || k.Kind != "pre-registered" {
		t.Fatalf("pre-registered client reported %+v", k)
	}
	if err := e.as.RecheckClient(context.Background(), "jwtsvc"); err != nil {
		t.Fatal(err)
	}
	if k := rec.last(t); k.ClientID != "jwtsvc" || k.Used != "" || len(k.JWKS) == 0 {
		t.Fatalf("re-check of the pre-registered client reported %+v", k)
	}
}

// TestJWKSURIBounds: the key set behind jwks_uri is fetched with the
// metadata-document fetcher's bounds: a size cap, JSON only, no redirect.
func TestJWKSURIBounds(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.MetadataDocuments.Admission.GrantTypes = []string{"client_credentials"}
		o.MetadataDocuments.JWKSMaxBytes = 1024
	}})
	for _, tt := range []struct {
		name, want string
		h          func(w http.ResponseWriter, r *http.Request)
	}{
		{"too large", "larger than 1024 bytes", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2000) + `"}`))
		}},
		{"not json", "Content-Type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`{"keys":[]}`))
		}},
		{"redirect", "redirects", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/jwks", http.StatusFound)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jwksURL := e.cimdURL("/jwks-"+strings.ReplaceAll(tt.name, " ", "-"), tt.h)
			var id string
			id = e.cimdURL("/agent-"+strings.ReplaceAll(tt.name, " ", "-"), func(w http.ResponseWriter, r *http.Request) {
				serveDoc(`{"client_id":"`+id+`","client_name":"Agent","redirect_uris":["https://agent.example.test/cb"],"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"`+jwksURL+`"}`)(w, r)
			})
			a := signJWT(t, e.clientKey, "k", "", map[string]any{"iss": id, "sub": id, "aud": e.issuer, "jti": tt.name, "exp": time.Now().Add(time.Minute).Unix()})
			tr := e.token(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI},
				"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {a}}, "", "")
			if tr.Status != 401 || tr.str("error") != meta.ErrInvalidClient || !strings.Contains(tr.str("error_description"), tt.want) {
				t.Fatalf("%d %v, want invalid_client mentioning %q", tr.Status, tr.Body, tt.want)
			}
		})
	}
}
