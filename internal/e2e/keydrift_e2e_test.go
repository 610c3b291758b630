package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/inventory"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// jwksClient is a metadata-document machine client whose keys are behind
// a jwks_uri on another https host, where the test can swap them.
type jwksClient struct {
	id     string
	served atomic.Pointer[[]byte]
	w      *controlsWorld
}

// serveKey publishes key (alone) behind the client's jwks_uri and returns
// its RFC 7638 thumbprint.
func (c *jwksClient) serveKey(t *testing.T, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	c.served.Store(&b)
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// token asks for a client-credentials token with an assertion signed by
// key.
func (c *jwksClient) token(t *testing.T, key *ecdsa.PrivateKey, kid string) (int, map[string]any) {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": c.id, "sub": c.id, "aud": c.w.base + "/oauth", "jti": meta.RandomToken(12),
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := jws.CompactSerialize()
	return machineToken(t, c.w, s)
}

func newJWKSClient(t *testing.T, w *controlsWorld) *jwksClient {
	t.Helper()
	c := &jwksClient{w: w}
	// httptest's TLS servers share one certificate, which the gateway's
	// fetcher trusts in this test.
	keys := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/jwk-set+json")
		rw.Write(*c.served.Load())
	}))
	t.Cleanup(keys.Close)
	c.id = w.cimd.URL + "/client.json"
	doc, err := json.Marshal(map[string]any{
		"client_id": c.id, "client_name": "Key-rotating automation",
		"redirect_uris":              []string{"https://automation.example/cb"},
		"grant_types":                []string{meta.GrantTypeClientCredentials},
		"token_endpoint_auth_method": meta.AuthMethodPrivateKeyJWT,
		"jwks_uri":                   keys.URL + "/jwks.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.cimdMu.Lock()
	w.cimdDoc = doc
	w.cimdMu.Unlock()
	return c
}

// auditDetail returns outcome and error of the audit records with action
// and target, read through the store (see auditRecords).
func auditDetail(t *testing.T, dataDir, action, target string) [][2]string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out [][2]string
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == action && r.Target == target {
			out = append(out, [2]string{r.Outcome, r.Error})
		}
	}
	return out
}

// TestJWKSURIKeySwap is issue 10's trust-object drift, end to end: the key
// behind a metadata-document client's jwks_uri is swapped. The scheduled
// re-check (run here explicitly) notices it: with the default
// configuration the change is flagged — audited as client.keys_changed with
// the old and new fingerprints, shown by `mcpgate inventory` — and the
// client still gets tokens; with inventory.block_changed_clients its next
// token request is refused (invalid_client, saying what to do) until
// `mcpgate inventory approve-client`, after which it works again.
func TestJWKSURIKeySwap(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(fmt.Sprintf("block_changed_clients=%v", block), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			w := newGovernedWorld(t, controlsUpstream(), permitAll, func(c *config.Config) {
				c.OAuth = &config.OAuth{Clients: &config.Clients{CIMD: &config.ClientPath{
					GrantTypes: []string{"client_credentials"}}}}
				// The schedule is off: the test runs the re-check itself.
				c.Inventory = &config.Inventory{BlockChangedTools: true, BlockChangedClients: block, RecheckInterval: -1}
			})
			c := newJWKSClient(t, w)
			key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			old := c.serveKey(t, key1, "k1")
			if status, body := c.token(t, key1, "k1"); status != http.StatusOK {
				t.Fatalf("first token: HTTP %d %v", status, body)
			}
			// First sight of the keys is recorded and audited (trust on first use).
			if recs := auditDetail(t, w.dataDir, inventory.EventClientKeysFirstSeen, c.id); len(recs) != 1 || !strings.Contains(recs[0][1], old) {
				t.Fatalf("client.keys_first_seen records: %v", recs)
			}

			// The key behind jwks_uri is swapped; the re-check notices.
			new := c.serveKey(t, key2, "k2")
			res, err := w.app.RecheckClients(ctx)
			if err != nil || res.Checked+res.Failed != 1 {
				t.Fatalf("re-check: %+v, %v", res, err)
			}
			outcome := "flagged"
			if block {
				outcome = "blocked"
			}
			recs := auditDetail(t, w.dataDir, inventory.EventClientKeysChanged, c.id)
			if len(recs) != 1 || recs[0][0] != outcome || !strings.Contains(recs[0][1], "old "+old) || !strings.Contains(recs[0][1], "new "+new) {
				t.Fatalf("client.keys_changed records: %v; want one %s with old %s and new %s", recs, outcome, old, new)
			}
			t.Logf("audit client.keys_changed (%s): %s", recs[0][0], recs[0][1])

			// The inventory shows the old and new fingerprints.
			out, err := runCLI(t, w.dataDir, inventorycmd.Commands, "inventory", "list", "--kind", "clients")
			if err != nil {
				t.Fatalf("inventory: %v\n%s", err, out)
			}
			if !strings.Contains(out, "CHANGED jwks_uri keys: old "+old+" -> new "+new) || !strings.Contains(out, "CHANGED since") {
				t.Fatalf("inventory does not show the key change:\n%s", out)
			}
			t.Logf("mcpgate inventory list --kind clients:\n%s", out)
			js, err := runCLI(t, w.dataDir, inventorycmd.Commands, "inventory", "list", "--kind", "clients", "--json")
			if err != nil {
				t.Fatalf("inventory --json: %v\n%s", err, js)
			}
			var clients []inventory.Client
			if err := json.Unmarshal([]byte(js), &clients); err != nil {
				t.Fatalf("inventory --json: %v\n%s", err, js)
			}
			i := slices.IndexFunc(clients, func(x inventory.Client) bool { return x.ID == c.id })
			if i < 0 || !clients[i].Flagged || len(clients[i].Drift) != 1 || !slices.Equal(clients[i].Drift[0].Old, []string{old}) ||
				!slices.Equal(clients[i].Drift[0].New, []string{new}) || !slices.Equal(clients[i].RemoteKeyThumbprints, []string{new}) {
				t.Fatalf("inventory --json client: %s", js)
			}

			status, body := c.token(t, key2, "k2")
			if !block {
				if status != http.StatusOK {
					t.Fatalf("flagged client's token: HTTP %d %v", status, body)
				}
				return
			}
			desc, _ := body["error_description"].(string)
			if status != http.StatusUnauthorized || body["error"] != meta.ErrInvalidClient || !strings.Contains(desc, "mcpgate inventory approve-client "+c.id) {
				t.Fatalf("blocked client's token: HTTP %d %v", status, body)
			}
			if out, err := runCLI(t, w.dataDir, inventorycmd.Commands, "inventory", "approve-client", c.id, "--by", "sec-team"); err != nil || !strings.Contains(out, new) {
				t.Fatalf("approve-client: %v\n%s", err, out)
			}
			if status, body := c.token(t, key2, "k2"); status != http.StatusOK {
				t.Fatalf("approved client's token: HTTP %d %v", status, body)
			}
			// The old key is no longer accepted: it is not behind jwks_uri.
			if status, _ := c.token(t, key1, "k1"); status == http.StatusOK {
				t.Fatal("the swapped-out key still obtains tokens")
			}
		})
	}
}
