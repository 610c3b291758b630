package authserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

// machineSecret is the secret of the pre-registered and dynamic machine
// clients of TestAdmission.
const machineSecret = "machine-secret-0123456789"

// admissionCase is one client of one registration path, under one
// admission policy, asking for one grant.
type admissionCase struct {
	path   string // cimd, dynamic, pre_registered
	mode   string
	match  bool     // allowlist: the allow list names the client
	grants []string // the path's grant_types (nil: default)
	status string   // the client's stored status before the request
	grant  string   // authorization_code or client_credentials
	want   string   // "" for success, else the OAuth error code
}

func (c admissionCase) String() string {
	m := c.mode
	if c.mode == authserver.AdmissionAllowlist && !c.match {
		m += "-miss"
	}
	return fmt.Sprintf("%s/%s/grants=%s/status=%s/%s", c.path, m, strings.Join(c.grants, "+"), c.status, c.grant)
}

// admissionCases enumerates every path × mode × grant type, with the
// outcome the admission rules give.
func admissionCases() []admissionCase {
	var out []admissionCase
	machine := []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken, meta.GrantTypeClientCredentials}
	for _, path := range []string{"cimd", "dynamic", "pre_registered"} {
		selfAsserted := path != "pre_registered"
		// refusedBeforeFetch: metadata documents closed or off the allow
		// list are refused as unknown clients (no document is fetched).
		unknown := meta.ErrUnauthorizedClient
		if path == "cimd" {
			unknown = meta.ErrInvalidClient
		}
		for _, grants := range [][]string{nil, machine} {
			for _, grant := range []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeClientCredentials} {
				grantOK := ""
				if grant == meta.GrantTypeClientCredentials && grants == nil && selfAsserted {
					grantOK = meta.ErrUnauthorizedClient
				}
				add := func(mode string, match bool, status, want string) {
					out = append(out, admissionCase{path: path, mode: mode, match: match, grants: grants, status: status, grant: grant, want: want})
				}
				add(authserver.AdmissionOpen, false, "", grantOK)
				add(authserver.AdmissionAllowlist, true, "", grantOK)
				add(authserver.AdmissionAllowlist, false, "", unknown)
				add(authserver.AdmissionAllowlist, false, store.ClientApproved, grantOK)
				add(authserver.AdmissionApproval, false, "", meta.ErrUnauthorizedClient)
				add(authserver.AdmissionApproval, false, store.ClientPending, meta.ErrUnauthorizedClient)
				add(authserver.AdmissionApproval, false, store.ClientApproved, grantOK)
				add(authserver.AdmissionClosed, false, "", unknown)
				add(authserver.AdmissionClosed, false, store.ClientApproved, grantOK)
				refused := meta.ErrUnauthorizedClient
				if grant == meta.GrantTypeAuthorizationCode {
					refused = meta.ErrAccessDenied
				}
				add(authserver.AdmissionOpen, false, store.ClientRefused, refused)
				add(authserver.AdmissionApproval, false, store.ClientRefused, refused)
			}
		}
	}
	return out
}

func TestAdmission(t *testing.T) {
	for _, tc := range admissionCases() {
		t.Run(tc.String(), func(t *testing.T) {
			var cimdID string
			e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
				pol := authserver.AdmissionPolicy{Mode: tc.mode, GrantTypes: tc.grants}
				if tc.mode == authserver.AdmissionAllowlist {
					pol.Allow = []string{"nothing.example.test"}
				}
				switch tc.path {
				case "cimd":
					if tc.match {
						pol.Allow = []string{"127.0.0.1"} // the document host
					}
					o.MetadataDocuments.Admission = pol
				case "dynamic":
					if tc.match {
						pol.Allow = []string{"app.example.test"}
					}
					o.Registration.Admission = pol
				default:
					if tc.match {
						pol.Allow = []string{"machine"}
					}
					o.PreRegistered = pol
				}
			}})
			ctx := context.Background()
			id := "machine"
			switch tc.path {
			case "cimd":
				cimdID = e.cimdURL("/machine.json", func(w http.ResponseWriter, r *http.Request) {
					b, _ := json.Marshal(map[string]any{"client_id": cimdID, "client_name": "Self-asserted machine",
						"redirect_uris": []string{webRedirect}, "grant_types": []string{"authorization_code", "refresh_token", "client_credentials"},
						"token_endpoint_auth_method": "private_key_jwt", "jwks": map[string]any{"keys": []any{jwkOf(e.clientKey, "m-1")}}})
					w.Header().Set("Content-Type", "application/json")
					w.Write(b)
				})
				id = cimdID
				if tc.status != "" {
					if err := e.st.PutClient(ctx, &store.Client{ID: id, Kind: store.ClientMetadataDocument, CreatedAt: time.Now()}); err != nil {
						t.Fatal(err)
					}
				}
			default:
				kind := store.ClientPreRegistered
				if tc.path == "dynamic" {
					kind, id = store.ClientDynamic, "dyn-machine"
				}
				if err := e.st.CreateClient(ctx, &store.Client{ID: id, Kind: kind, Name: "Machine", SecretHash: store.Digest(machineSecret),
					RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
					TokenEndpointAuthMethod: "client_secret_basic", CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.status != "" {
				if err := e.st.SetClientStatus(ctx, id, tc.status, "test", time.Now()); err != nil {
					t.Fatal(err)
				}
			}

			var got, desc string
			switch tc.grant {
			case meta.GrantTypeClientCredentials:
				form := url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}}
				basicID, basicSecret := id, machineSecret
				if tc.path == "cimd" {
					basicID, basicSecret = "", ""
					form.Set("client_assertion_type", meta.ClientAssertionTypeJWTBearer)
					form.Set("client_assertion", signJWT(t, e.clientKey, "m-1", "", map[string]any{"iss": id, "sub": id, "aud": e.issuer,
						"jti": meta.RandomToken(8), "exp": time.Now().Add(time.Minute).Unix()}))
				}
				tr := e.token(form, basicID, basicSecret)
				got, desc = tr.str("error"), tr.str("error_description")
				if got == "" && (tr.Status != 200 || tr.str("access_token") == "") {
					t.Fatalf("token: %d %v", tr.Status, tr.Body)
				}
			default:
				_, chal := pkce()
				resp := e.authorize(authzQuery(id, webRedirect, chal).Encode(), "alice")
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode == http.StatusFound {
					loc, _ := url.Parse(resp.Header.Get("Location"))
					if loc.Query().Get("code") == "" {
						t.Fatalf("authorize redirected without a code: %s", loc)
					}
				} else {
					var oe map[string]string
					if err := json.Unmarshal(body, &oe); err != nil {
						t.Fatalf("authorize: HTTP %d %s", resp.StatusCode, body)
					}
					got, desc = oe["error"], oe["error_description"]
					if resp.Header.Get("Location") != "" {
						t.Fatalf("an admission refusal redirected to the client: %s", resp.Header.Get("Location"))
					}
				}
			}
			if got != tc.want {
				t.Fatalf("error = %q (%s), want %q", got, desc, tc.want)
			}
			if tc.want == meta.ErrUnauthorizedClient && tc.mode == authserver.AdmissionApproval && (tc.status == "" || tc.status == store.ClientPending) &&
				!strings.Contains(desc, "mcpgate client approve") {
				t.Errorf("a client awaiting approval is not told how: %q", desc)
			}
			if tc.path == "cimd" && tc.mode == authserver.AdmissionApproval && tc.status == "" {
				// First sight of a document on an approval path stores
				// the client as pending.
				c, err := e.st.GetClient(ctx, id)
				if err != nil || c.Status != store.ClientPending {
					t.Fatalf("new metadata-document client = %+v, %v; want pending", c, err)
				}
			}
		})
	}
}

// register posts a registration request and decodes the answer.
func register(t *testing.T, e *env, body string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.Post(e.url("/register"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("register: HTTP %d, non-JSON %q", resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header, out
}

const machineRegistration = `{"client_name":"Robot","grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`

func TestRegistrationAdmission(t *testing.T) {
	// By default a dynamically registered client never gets machine
	// grants.
	e := newEnv(t, nil)
	for _, g := range []string{"client_credentials", meta.GrantTypeJWTBearer} {
		st, _, body := register(t, e, `{"client_name":"Robot","grant_types":["`+g+`"],"token_endpoint_auth_method":"client_secret_basic"}`)
		if st != 400 || body["error"] != meta.ErrInvalidClientMetadata || !strings.Contains(body["error_description"].(string), "not allowed") {
			t.Fatalf("default registration of %s: %d %v", g, st, body)
		}
	}

	// Allowed explicitly, the machine client registers and gets a token.
	m2m := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Registration.Admission.GrantTypes = []string{"client_credentials"}
	}})
	st, _, body := register(t, m2m, machineRegistration)
	if st != 201 {
		t.Fatalf("allowed machine registration: %d %v", st, body)
	}
	tr := m2m.token(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}}, body["client_id"].(string), body["client_secret"].(string))
	if tr.Status != 200 {
		t.Fatalf("allowed machine token: %d %v", tr.Status, tr.Body)
	}
	// ... but a public client cannot hold client credentials.
	if st, _, body := register(t, m2m, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`); st != 400 || body["error"] != meta.ErrInvalidClientMetadata {
		t.Fatalf("public machine registration: %d %v", st, body)
	}

	// Closed: 403, and not advertised.
	closed := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.Registration.Admission.Mode = authserver.AdmissionClosed }})
	if st, _, body := register(t, closed, `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`); st != 403 || body["error"] != meta.ErrAccessDenied {
		t.Fatalf("closed registration: %d %v", st, body)
	}
	if m := closed.as.Metadata(); m.RegistrationEndpoint != "" {
		t.Fatalf("closed registration advertised at %s", m.RegistrationEndpoint)
	}

	// Allow list: every redirect URI must be allowed.
	allow := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Registration.Admission = authserver.AdmissionPolicy{Mode: authserver.AdmissionAllowlist, Allow: []string{"https://apps.example.test/mcp/", "127.0.0.1"}}
	}})
	for _, tt := range []struct {
		redirects string
		status    int
		code      string
	}{
		{`["https://apps.example.test/mcp/cb"]`, 201, ""},
		{`["http://127.0.0.1:5555/cb","https://apps.example.test/mcp/x"]`, 201, ""},
		{`["https://apps.example.test/mcp-evil/cb"]`, 400, meta.ErrInvalidRedirectURI},
		{`["https://apps.example.test.evil.test/mcp/cb"]`, 400, meta.ErrInvalidRedirectURI},
		{`["https://apps.example.test/mcp/cb","https://evil.test/cb"]`, 400, meta.ErrInvalidRedirectURI},
	} {
		st, _, body := register(t, allow, `{"redirect_uris":`+tt.redirects+`,"token_endpoint_auth_method":"none"}`)
		if st != tt.status || (tt.code != "" && body["error"] != tt.code) {
			t.Errorf("allow list, redirects %s: %d %v", tt.redirects, st, body)
		}
	}

	// Approval: registered as pending; no token until approved.
	appr := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Registration.Admission = authserver.AdmissionPolicy{Mode: authserver.AdmissionApproval, GrantTypes: []string{"client_credentials"}}
	}})
	st, _, body = register(t, appr, machineRegistration)
	if st != 201 {
		t.Fatalf("registration awaiting approval: %d %v", st, body)
	}
	id, secret := body["client_id"].(string), body["client_secret"].(string)
	if c, err := appr.st.GetClient(context.Background(), id); err != nil || c.Status != store.ClientPending {
		t.Fatalf("stored %+v, %v; want pending", c, err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}}
	if tr := appr.token(form, id, secret); tr.Status != 400 || tr.str("error") != meta.ErrUnauthorizedClient ||
		!strings.Contains(tr.str("error_description"), "mcpgate client approve "+id) {
		t.Fatalf("pending client's token: %d %v", tr.Status, tr.Body)
	}
	if err := appr.st.SetClientStatus(context.Background(), id, store.ClientApproved, "admin", time.Now()); err != nil {
		t.Fatal(err)
	}
	if tr := appr.token(form, id, secret); tr.Status != 200 {
		t.Fatalf("approved client's token: %d %v", tr.Status, tr.Body)
	}
}

// clock is a settable clock for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const publicRegistration = `{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`

func TestRegistrationRateLimit(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Now = clk.now
		o.Registration.RateLimit = authserver.RateLimit{PerMinute: 6, Burst: 3}
	}})
	for i := range 3 {
		if st, _, body := register(t, e, publicRegistration); st != 201 {
			t.Fatalf("registration %d within the burst: %d %v", i, st, body)
		}
	}
	st, hdr, body := register(t, e, publicRegistration)
	if st != 429 || body["error"] != meta.ErrTemporarilyUnavailable || hdr.Get("Retry-After") != "10" {
		t.Fatalf("over the limit: %d Retry-After %q %v", st, hdr.Get("Retry-After"), body)
	}
	// 6 a minute: one more every 10 seconds.
	clk.add(10 * time.Second)
	if st, _, body := register(t, e, publicRegistration); st != 201 {
		t.Fatalf("after 10 s: %d %v", st, body)
	}
	if st, _, _ := register(t, e, publicRegistration); st != 429 {
		t.Fatalf("second after 10 s: %d, want 429", st)
	}
	clk.add(time.Hour)
	for i := range 3 {
		if st, _, body := register(t, e, publicRegistration); st != 201 {
			t.Fatalf("registration %d after the bucket refilled: %d %v", i, st, body)
		}
	}
	if n, _ := e.st.CountClients(context.Background(), store.ClientDynamic); n != 7 {
		t.Fatalf("%d dynamic clients stored, want 7", n)
	}
}

func TestRegistrationBounds(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
		o.Now = clk.now
		o.Registration.RateLimit.PerMinute = -1
		o.Registration.MaxClients = 3
		o.Registration.MaxMetadataBytes = 1024
		o.Registration.UnusedClientTTL = time.Hour
	}})
	// The size bound.
	big := `{"client_name":"` + strings.Repeat("x", 1100) + `","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`
	if st, _, body := register(t, e, big); st != 400 || body["error"] != meta.ErrInvalidClientMetadata || !strings.Contains(body["error_description"].(string), "1024 bytes") {
		t.Fatalf("oversized registration: %d %v", st, body)
	}
	// The storage bound.
	var ids []string
	for i := range 3 {
		st, _, body := register(t, e, publicRegistration)
		if st != 201 {
			t.Fatalf("registration %d: %d %v", i, st, body)
		}
		ids = append(ids, body["client_id"].(string))
	}
	st, hdr, body := register(t, e, publicRegistration)
	if st != 503 || body["error"] != meta.ErrTemporarilyUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("beyond the storage bound: %d %v", st, body)
	}
	// One client obtains a token: the sweep keeps it.
	ver, chal := pkce()
	code := e.code(authzQuery(ids[0], "http://127.0.0.1/cb", chal))
	if tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {ver}, "redirect_uri": {"http://127.0.0.1/cb"}, "client_id": {ids[0]}}, "", ""); tr.Status != 200 {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	ctx := context.Background()
	if n, err := e.as.DeleteUnusedClients(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before the TTL: %d, %v", n, err)
	}
	clk.add(time.Hour + time.Second)
	if n, err := e.as.DeleteUnusedClients(ctx); err != nil || n != 2 {
		t.Fatalf("sweep after the TTL: %d, %v; want 2", n, err)
	}
	if _, err := e.st.GetClient(ctx, ids[0]); err != nil {
		t.Fatalf("the used client was collected: %v", err)
	}
	for _, id := range ids[1:] {
		if _, err := e.st.GetClient(ctx, id); err == nil {
			t.Fatalf("unused client %s survived the sweep", id)
		}
	}
	if st, _, body := register(t, e, publicRegistration); st != 201 {
		t.Fatalf("registration after the sweep: %d %v", st, body)
	}
}

func TestIntrospectionOnlyForResourceServers(t *testing.T) {
	e := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.IntrospectionClients = []string{"web"} }})
	tr := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "", "")
	at := tr.str("access_token")
	if at == "" {
		t.Fatalf("token: %d %v", tr.Status, tr.Body)
	}
	// A confidential client that is not a resource server learns nothing
	// about any token, live or not: the same refusal for both.
	for _, tok := range []string{at, "not-a-token"} {
		r := e.post("/introspect", url.Values{"token": {tok}, "client_id": {"svc"}, "client_secret": {svcSecret}}, "", "")
		if _, leaked := r.Body["active"]; r.Status != 403 || r.str("error") != meta.ErrUnauthorizedClient || leaked {
			t.Fatalf("introspection by a non-resource-server: %d %v", r.Status, r.Body)
		}
	}
	// Wrong credentials: 401 invalid_client.
	if r := e.post("/introspect", url.Values{"token": {at}}, "web", "wrong"); r.Status != 401 || r.str("error") != meta.ErrInvalidClient {
		t.Fatalf("introspection with a wrong secret: %d %v", r.Status, r.Body)
	}
	// The named resource server gets the answer.
	if r := e.post("/introspect", url.Values{"token": {at}}, "web", webSecret); r.Status != 200 || r.Body["active"] != true || r.Body["client_id"] != "svc" {
		t.Fatalf("introspection by the resource server: %d %v", r.Status, r.Body)
	}
	// No introspection clients configured: nobody may introspect.
	none := newEnv(t, nil)
	if r := none.post("/introspect", url.Values{"token": {at}}, "web", webSecret); r.Status != 403 || r.str("error") != meta.ErrUnauthorizedClient {
		t.Fatalf("introspection with none configured: %d %v", r.Status, r.Body)
	}
}
