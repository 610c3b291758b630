package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/authcmd"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// permitAll is the default policy: every identity may list and call every
// tool, so admission is what stands between a stranger and the tools.
const permitAll = `
@id("base")
permit(principal, action, resource);
`

// selfAssertedMachine publishes, on w's metadata-document host, the
// document of a machine client that asks for client_credentials and
// authenticates with private_key_jwt and its author's own key. It returns
// the client id and a function minting fresh client assertions.
func selfAssertedMachine(t *testing.T, w *controlsWorld) (string, func() string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := w.cimd.URL + "/client.json"
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "attacker-1", Algorithm: "ES256", Use: "sig"}
	doc, err := json.Marshal(map[string]any{
		"client_id": id, "client_name": "Totally legitimate automation",
		"redirect_uris":              []string{"https://automation.example/cb"},
		"grant_types":                []string{meta.GrantTypeClientCredentials},
		"token_endpoint_auth_method": meta.AuthMethodPrivateKeyJWT,
		"jwks":                       jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.cimdMu.Lock()
	w.cimdDoc = doc
	w.cimdMu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "attacker-1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id, func() string {
		claims, _ := json.Marshal(map[string]any{"iss": id, "sub": id, "aud": w.base + "/oauth", "jti": meta.RandomToken(12),
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
}

// machineToken asks the gateway's token endpoint for a client-credentials
// token with a private_key_jwt assertion.
func machineToken(t *testing.T, w *controlsWorld, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {meta.GrantTypeClientCredentials}, "resource": {w.base + "/mcp"},
		"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion}}
	resp, err := http.Post(w.base+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.UnmarshalRead(resp.Body, &body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestSelfAssertedMachineClient is issue 10's first problem, end to end:
// a client ID metadata document asking for client_credentials with
// private_key_jwt and its author's own keys gets no token from a gateway
// with the default configuration (even under a permit-all policy), and
// is admitted only when the configuration allows client credentials for
// metadata-document clients explicitly.
func TestSelfAssertedMachineClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("refused by default", func(t *testing.T) {
		w := newGovernedWorld(t, controlsUpstream(), permitAll, nil)
		_, assertion := selfAssertedMachine(t, w)
		status, body := machineToken(t, w, assertion())
		if status != http.StatusBadRequest || body["error"] != meta.ErrUnauthorizedClient {
			t.Fatalf("self-asserted machine client: HTTP %d %v; want 400 unauthorized_client", status, body)
		}
		desc, _ := body["error_description"].(string)
		if !strings.Contains(desc, "client_credentials") || !strings.Contains(desc, "oauth.clients.cimd.grant_types") {
			t.Errorf("the refusal does not say what to configure: %q", desc)
		}
		// Introspection is no oracle for it either.
		form := url.Values{"token": {"anything"}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {assertion()}}
		resp, err := http.Post(w.base+"/oauth/introspect", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("introspection by a self-asserted client: HTTP %d, want 403", resp.StatusCode)
		}
	})

	t.Run("admitted when configured", func(t *testing.T) {
		w := newGovernedWorld(t, controlsUpstream(), permitAll, func(c *config.Config) {
			c.OAuth = &config.OAuth{Clients: &config.Clients{CIMD: &config.ClientPath{
				GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}}}}
		})
		_, assertion := selfAssertedMachine(t, w)
		status, body := machineToken(t, w, assertion())
		tok, _ := body["access_token"].(string)
		if status != http.StatusOK || tok == "" {
			t.Fatalf("configured machine client: HTTP %d %v", status, body)
		}
		cs := w.connect(ctx, t, bearer{tok})
		if names := toolNames(ctx, t, cs); len(names) == 0 {
			t.Fatal("the admitted machine client lists no tool")
		}
	})

	t.Run("approval mode holds it until approved", func(t *testing.T) {
		w := newGovernedWorld(t, controlsUpstream(), permitAll, func(c *config.Config) {
			c.OAuth = &config.OAuth{Clients: &config.Clients{CIMD: &config.ClientPath{Mode: config.ClientsApproval,
				GrantTypes: []string{"client_credentials"}}}}
		})
		id, assertion := selfAssertedMachine(t, w)
		status, body := machineToken(t, w, assertion())
		desc, _ := body["error_description"].(string)
		if status != http.StatusBadRequest || body["error"] != meta.ErrUnauthorizedClient || !strings.Contains(desc, "mcpgate client approve "+id) {
			t.Fatalf("pending machine client: HTTP %d %v", status, body)
		}
		if out, err := runCLI(t, w.dataDir, authcmd.Commands, "client", "approve", id); err != nil {
			t.Fatalf("client approve: %v\n%s", err, out)
		}
		if status, body := machineToken(t, w, assertion()); status != http.StatusOK {
			t.Fatalf("approved machine client: HTTP %d %v", status, body)
		}
		if out, err := runCLI(t, w.dataDir, authcmd.Commands, "client", "refuse", id); err != nil {
			t.Fatalf("client refuse: %v\n%s", err, out)
		}
		if status, body := machineToken(t, w, assertion()); status != http.StatusBadRequest || !strings.Contains(body["error_description"].(string), "refused") {
			t.Fatalf("refused machine client: HTTP %d %v", status, body)
		}
	})
}

// TestRegistrationFlood: a burst of dynamic registrations from one
// address gets HTTP 429 after the default burst of 20.
func TestRegistrationFlood(t *testing.T) {
	w := newGovernedWorld(t, controlsUpstream(), permitAll, nil)
	reg := `{"client_name":"flood","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`
	var codes []int
	for range 25 {
		resp, err := http.Post(w.base+"/oauth/register", "application/json", strings.NewReader(reg))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	for i, c := range codes {
		want := http.StatusCreated
		if i >= 20 {
			want = http.StatusTooManyRequests
		}
		if c != want {
			t.Fatalf("registration %d: HTTP %d, want %d (all: %v)", i+1, c, want, codes)
		}
	}
}

// runCLI runs an mcpgate command tree (authcmd.Commands,
// inventorycmd.Commands, ...) on dataDir, as an administrator would while
// the gateway runs.
func runCLI(t *testing.T, dataDir string, commands func(func() string) []*cobra.Command, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(commands(func() string { return dataDir })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}
