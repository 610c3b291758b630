package oauthclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// testSafe allows the loopback test servers (and only them).
var testSafe = safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true, Timeout: 10 * time.Second}

func newTestServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

type tokInfo struct {
	scope, resource, clientID string
	jkt                       string // DPoP key thumbprint for bound tokens
}

type codeInfo struct {
	challenge, resource, scope, clientID, redirect string
}

// fakeAS is a test authorization server.
type fakeAS struct {
	t   *testing.T
	srv *httptest.Server

	// configuration (set before use)
	prefix         string // issuer path, e.g. "/tenant1"
	metadataPath   string // default: RFC 8414 path for the issuer
	issuerOverride string
	noPKCE         bool
	issSupported   bool
	issMode        string // "correct" (default), "wrong", "omit", "slash"
	tamperState    bool
	omitState      bool
	cimd           bool
	noRegistration bool
	authMethods    []string
	grantTypes     []string
	regMethod      string // token_endpoint_auth_method in registration responses
	secrets        map[string]string
	clientKeys     map[string]crypto.PublicKey
	idpKey         *ecdsa.PublicKey
	expiresIn      int
	issueRefresh   bool
	authError      string
	dpopAlgs       []string // dpop_signing_alg_values_supported; enables DPoP
	dpopNonce      string   // nonce required in token-endpoint proofs
	workloadJWT    string   // accepted jwt-bearer assertion (WIF)

	dpopChallenges int

	mu            sync.Mutex
	paths         []string
	authRequests  []url.Values
	tokenRequests []url.Values
	tokenAuth     []string
	registrations []meta.ClientMetadata
	codes         map[string]codeInfo
	tokens        map[string]tokInfo
	refresh       map[string]tokInfo
	n             int
}

func newFakeAS(t *testing.T, configure func(*fakeAS)) *fakeAS {
	a := &fakeAS{t: t, issMode: "correct", secrets: map[string]string{}, clientKeys: map[string]crypto.PublicKey{},
		codes: map[string]codeInfo{}, tokens: map[string]tokInfo{}, refresh: map[string]tokInfo{}, expiresIn: 3600}
	if configure != nil {
		configure(a)
	}
	a.srv = newTestServer(t, http.HandlerFunc(a.serve))
	return a
}

func (a *fakeAS) issuer() string {
	if a.issuerOverride != "" {
		return a.issuerOverride
	}
	return a.srv.URL + a.prefix
}

func (a *fakeAS) metadata() map[string]any {
	m := map[string]any{
		"issuer":                   a.issuer(),
		"authorization_endpoint":   a.srv.URL + a.prefix + "/authorize",
		"token_endpoint":           a.srv.URL + a.prefix + "/token",
		"response_types_supported": []string{"code"},
	}
	if !a.noPKCE {
		m["code_challenge_methods_supported"] = []string{"S256"}
	}
	if !a.noRegistration {
		m["registration_endpoint"] = a.srv.URL + a.prefix + "/register"
	}
	if a.issSupported {
		m["authorization_response_iss_parameter_supported"] = true
	}
	if a.cimd {
		m["client_id_metadata_document_supported"] = true
	}
	if a.authMethods != nil {
		m["token_endpoint_auth_methods_supported"] = a.authMethods
	}
	if a.grantTypes != nil {
		m["grant_types_supported"] = a.grantTypes
	}
	if a.dpopAlgs != nil {
		m["dpop_signing_alg_values_supported"] = a.dpopAlgs
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	w.Write(b)
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (a *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.paths = append(a.paths, r.URL.Path)
	mdPath := a.metadataPath
	if mdPath == "" {
		mdPath = "/.well-known/oauth-authorization-server" + a.prefix
	}
	switch r.URL.Path {
	case mdPath:
		writeJSON(w, 200, a.metadata())
	case a.prefix + "/authorize":
		a.authorize(w, r)
	case a.prefix + "/token":
		a.token(w, r)
	case a.prefix + "/register":
		a.register(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeAS) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.authRequests = append(a.authRequests, q)
	red, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("redirect_uri") == "" {
		http.Error(w, "bad redirect_uri", 400)
		return
	}
	a.n++
	code := "code-" + strings.Repeat("x", a.n)
	a.codes[code] = codeInfo{challenge: q.Get("code_challenge"), resource: q.Get("resource"), scope: q.Get("scope"), clientID: q.Get("client_id"), redirect: q.Get("redirect_uri")}
	rq := red.Query()
	if a.authError != "" {
		rq.Set("error", a.authError)
	} else {
		rq.Set("code", code)
	}
	switch {
	case a.omitState:
	case a.tamperState:
		rq.Set("state", q.Get("state")+"x")
	default:
		rq.Set("state", q.Get("state"))
	}
	switch a.issMode {
	case "correct":
		rq.Set("iss", a.issuer())
	case "wrong":
		rq.Set("iss", "https://evil.example.com")
	case "slash":
		rq.Set("iss", a.issuer()+"/")
	}
	red.RawQuery = rq.Encode()
	http.Redirect(w, r, red.String(), http.StatusFound)
}

// authenticate checks client authentication and returns the client_id.
func (a *fakeAS) authenticate(r *http.Request, form url.Values) (string, bool) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ := url.QueryUnescape(u)
		sec, _ := url.QueryUnescape(p)
		return id, a.secrets[id] != "" && a.secrets[id] == sec
	}
	if form.Get("client_assertion_type") == meta.ClientAssertionTypeJWTBearer {
		tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
		if err != nil {
			return "", false
		}
		var unverified jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
			return "", false
		}
		key := a.clientKeys[unverified.Subject]
		if key == nil {
			return "", false
		}
		var c jwt.Claims
		if err := tok.Claims(key, &c); err != nil {
			return "", false
		}
		if err := c.Validate(jwt.Expected{Issuer: unverified.Subject, Subject: unverified.Subject, AnyAudience: jwt.Audience{a.issuer()}, Time: time.Now()}); err != nil || c.ID == "" {
			return "", false
		}
		return c.Subject, true
	}
	id := form.Get("client_id")
	if sec := form.Get("client_secret"); sec != "" {
		return id, a.secrets[id] == sec
	}
	// public client: must not have a secret
	return id, id != "" && a.secrets[id] == "" && a.clientKeys[id] == nil
}

func (a *fakeAS) issue(w http.ResponseWriter, info tokInfo) {
	a.n++
	at := "at-" + strings.Repeat("y", a.n)
	a.tokens[at] = info
	typ := "Bearer"
	if info.jkt != "" {
		typ = "DPoP"
	}
	resp := map[string]any{"access_token": at, "token_type": typ, "expires_in": a.expiresIn}
	if info.scope != "" {
		resp["scope"] = info.scope
	}
	if a.issueRefresh {
		rt := "rt-" + strings.Repeat("z", a.n)
		a.refresh[rt] = info
		resp["refresh_token"] = rt
	}
	writeJSON(w, 200, resp)
}

func (a *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthErr(w, 400, "invalid_request", err.Error())
		return
	}
	form := r.PostForm
	a.tokenRequests = append(a.tokenRequests, form)
	a.tokenAuth = append(a.tokenAuth, r.Header.Get("Authorization"))
	jkt := ""
	if a.dpopAlgs != nil && r.Header.Get("DPoP") != "" {
		var nonce string
		var err error
		jkt, nonce, err = verifyDPoPProof(r.Header.Get("DPoP"), "POST", a.srv.URL+a.prefix+"/token", "")
		if err != nil {
			oauthErr(w, 400, "invalid_dpop_proof", err.Error())
			return
		}
		if a.dpopNonce != "" && nonce != a.dpopNonce {
			a.dpopChallenges++
			w.Header().Set("DPoP-Nonce", a.dpopNonce)
			oauthErr(w, 400, "use_dpop_nonce", "nonce required")
			return
		}
	}
	if a.workloadJWT != "" && form.Get("grant_type") == meta.GrantTypeJWTBearer {
		if form.Get("assertion") != a.workloadJWT {
			oauthErr(w, 400, "invalid_grant", "bad assertion")
			return
		}
		a.issue(w, tokInfo{scope: form.Get("scope"), resource: form.Get("resource"), clientID: form.Get("client_id"), jkt: jkt})
		return
	}
	clientID, ok := a.authenticate(r, form)
	if !ok {
		oauthErr(w, 401, "invalid_client", "client authentication failed")
		return
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		ci, ok := a.codes[form.Get("code")]
		delete(a.codes, form.Get("code"))
		switch {
		case !ok:
			oauthErr(w, 400, "invalid_grant", "unknown code")
		case !meta.VerifyS256(form.Get("code_verifier"), ci.challenge):
			oauthErr(w, 400, "invalid_grant", "PKCE verification failed")
		case ci.resource != form.Get("resource"):
			oauthErr(w, 400, "invalid_target", "resource differs from authorization request")
		case ci.clientID != clientID || ci.redirect != form.Get("redirect_uri"):
			oauthErr(w, 400, "invalid_grant", "client or redirect mismatch")
		default:
			a.issue(w, tokInfo{scope: ci.scope, resource: ci.resource, clientID: clientID, jkt: jkt})
		}
	case "refresh_token":
		info, ok := a.refresh[form.Get("refresh_token")]
		delete(a.refresh, form.Get("refresh_token")) // rotation: old one is now invalid
		if !ok || info.resource != form.Get("resource") || info.jkt != jkt {
			oauthErr(w, 400, "invalid_grant", "bad refresh token (or DPoP key changed)")
			return
		}
		a.issue(w, info)
	case "client_credentials":
		a.issue(w, tokInfo{scope: form.Get("scope"), resource: form.Get("resource"), clientID: clientID})
	case meta.GrantTypeJWTBearer:
		tok, err := jwt.ParseSigned(form.Get("assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || len(tok.Headers) != 1 || tok.Headers[0].ExtraHeaders["typ"] != meta.IDJAGJWTType {
			oauthErr(w, 400, "invalid_grant", "bad ID-JAG")
			return
		}
		var c jwt.Claims
		var extra struct {
			Resource string `json:"resource"`
			ClientID string `json:"client_id"`
		}
		if err := tok.Claims(a.idpKey, &c, &extra); err != nil {
			oauthErr(w, 400, "invalid_grant", "ID-JAG signature")
			return
		}
		if err := c.Validate(jwt.Expected{AnyAudience: jwt.Audience{a.issuer()}, Time: time.Now()}); err != nil || extra.ClientID != clientID {
			oauthErr(w, 400, "invalid_grant", "ID-JAG claims")
			return
		}
		a.issue(w, tokInfo{scope: form.Get("scope"), resource: extra.Resource, clientID: clientID})
	default:
		oauthErr(w, 400, "unsupported_grant_type", form.Get("grant_type"))
	}
}

func (a *fakeAS) register(w http.ResponseWriter, r *http.Request) {
	if a.noRegistration {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	md, err := meta.ParseClientMetadata(body)
	if err != nil {
		oauthErr(w, 400, "invalid_client_metadata", err.Error())
		return
	}
	a.registrations = append(a.registrations, *md)
	a.n++
	id := "dcr-client-" + strings.Repeat("c", a.n)
	method := md.TokenEndpointAuthMethod
	if a.regMethod != "" {
		method = a.regMethod
	}
	resp := map[string]any{"client_id": id, "redirect_uris": md.RedirectURIs, "client_name": md.ClientName, "token_endpoint_auth_method": method}
	if method != "none" {
		a.secrets[id] = "dcr-secret"
		resp["client_secret"] = "dcr-secret"
	}
	writeJSON(w, 201, resp)
}

func (a *fakeAS) snapshot() (auth []url.Values, tok []url.Values, tokAuth []string, regs []meta.ClientMetadata, paths []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.authRequests), slices.Clone(a.tokenRequests), slices.Clone(a.tokenAuth), slices.Clone(a.registrations), slices.Clone(a.paths)
}

func (a *fakeAS) lookup(at string) (tokInfo, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ti, ok := a.tokens[at]
	return ti, ok
}

// fakeRS is a test MCP server (resource server).
type fakeRS struct {
	srv *httptest.Server
	as  *fakeAS

	prmPath          string // default "/.well-known/oauth-protected-resource/mcp"; "-" = none
	prmInHeader      bool
	scopeInHeader    string
	scopesSupported  []string
	resourceOverride string
	authServers      []string
	// needScope maps a substring of the request body to the scope it needs.
	needScope map[string]string
	always403 bool
	dpopNonce string // nonce required in resource proofs

	dpopChallenges int
	// redirectTo, when set, redirects authorized requests whose body
	// contains "redirect" there.
	redirectTo string

	mu          sync.Mutex
	paths       []string
	authHeaders []string
	bodies      []string
	otherAuth   []string // Authorization headers on paths other than /mcp
}

func newFakeRS(t *testing.T, as *fakeAS, configure func(*fakeRS)) *fakeRS {
	s := &fakeRS{as: as, prmPath: "/.well-known/oauth-protected-resource/mcp", prmInHeader: true}
	if configure != nil {
		configure(s)
	}
	s.srv = newTestServer(t, http.HandlerFunc(s.serve))
	return s
}

func (s *fakeRS) url() string { return s.srv.URL + "/mcp" }

func (s *fakeRS) resource() string {
	if s.resourceOverride != "" {
		return s.resourceOverride
	}
	if s.prmPath == "/.well-known/oauth-protected-resource" {
		return s.srv.URL
	}
	return s.srv.URL + "/mcp"
}

func (s *fakeRS) challenge(extra string) string {
	var parts []string
	if extra != "" {
		parts = append(parts, extra)
	}
	if s.scopeInHeader != "" {
		parts = append(parts, `scope="`+s.scopeInHeader+`"`)
	}
	if s.prmInHeader && s.prmPath != "-" {
		parts = append(parts, `resource_metadata="`+s.srv.URL+s.prmPath+`"`)
	}
	if len(parts) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(parts, ", ")
}

func (s *fakeRS) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	s.mu.Unlock()
	if s.prmPath != "-" && r.URL.Path == s.prmPath {
		m := map[string]any{"resource": s.resource()}
		if s.authServers != nil {
			m["authorization_servers"] = s.authServers
		} else if s.as != nil {
			m["authorization_servers"] = []string{s.as.issuer()}
		}
		if s.scopesSupported != nil {
			m["scopes_supported"] = s.scopesSupported
		}
		writeJSON(w, 200, m)
		return
	}
	if r.URL.Path != "/mcp" {
		s.mu.Lock()
		s.otherAuth = append(s.otherAuth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.authHeaders = append(s.authHeaders, r.Header.Get("Authorization"))
	s.bodies = append(s.bodies, string(body))
	s.mu.Unlock()
	scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	info, valid := s.as.lookup(at)
	ok := strings.EqualFold(scheme, "Bearer") && info.jkt == ""
	if valid && info.jkt != "" && strings.EqualFold(scheme, "DPoP") {
		jkt, nonce, err := verifyDPoPProof(r.Header.Get("DPoP"), r.Method, s.srv.URL+"/mcp", at)
		ok = err == nil && jkt == info.jkt
		if ok && s.dpopNonce != "" && nonce != s.dpopNonce {
			s.mu.Lock()
			s.dpopChallenges++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.Header().Set("DPoP-Nonce", s.dpopNonce)
			oauthErr(w, 401, "use_dpop_nonce", "nonce required")
			return
		}
	}
	if !ok || !valid || info.resource != s.resource() {
		w.Header().Set("WWW-Authenticate", s.challenge(""))
		oauthErr(w, 401, "invalid_token", "missing or invalid token")
		return
	}
	if s.redirectTo != "" && strings.Contains(string(body), "redirect") {
		http.Redirect(w, r, s.redirectTo, http.StatusFound)
		return
	}
	granted := strings.Fields(info.scope)
	for sub, scope := range s.needScope {
		if strings.Contains(string(body), sub) && !slices.Contains(granted, scope) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`", resource_metadata="`+s.srv.URL+s.prmPath+`"`)
			oauthErr(w, 403, "insufficient_scope", "need "+scope)
			return
		}
	}
	if s.always403 {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="admin", resource_metadata="`+s.srv.URL+s.prmPath+`"`)
		oauthErr(w, 403, "insufficient_scope", "never enough")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"echo":` + strings.TrimSpace(string(mustJSON(string(body)))) + `}`))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *fakeRS) seenAuth() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.authHeaders)
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeIdP is a test enterprise identity provider performing token exchange.
type fakeIdP struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	clientID string // client_id put in ID-JAGs
	idToken  string

	mu       sync.Mutex
	requests []url.Values
}

func newFakeIdP(t *testing.T, jagClientID string) *fakeIdP {
	p := &fakeIdP{key: genKey(t), clientID: jagClientID, idToken: "id-token-" + base64.RawURLEncoding.EncodeToString([]byte("user"))}
	p.srv = newTestServer(t, http.HandlerFunc(p.serve))
	return p
}

func (p *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	r.ParseForm()
	f := r.PostForm
	p.mu.Lock()
	p.requests = append(p.requests, f)
	p.mu.Unlock()
	if f.Get("grant_type") != meta.GrantTypeTokenExchange || f.Get("requested_token_type") != meta.TokenTypeIDJAG ||
		f.Get("subject_token_type") != meta.TokenTypeIDToken || f.Get("subject_token") != p.idToken ||
		f.Get("audience") == "" || f.Get("resource") == "" {
		oauthErr(w, 400, "invalid_request", "bad token exchange")
		return
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, (&jose.SignerOptions{}).WithType(meta.IDJAGJWTType))
	now := time.Now()
	jag, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: p.srv.URL, Subject: "user-1", Audience: jwt.Audience{f.Get("audience")},
		ID: "jti-1", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).
		Claims(map[string]any{"resource": f.Get("resource"), "client_id": p.clientID}).Serialize()
	if err != nil {
		oauthErr(w, 500, "server_error", err.Error())
		return
	}
	writeJSON(w, 200, map[string]any{"access_token": jag, "issued_token_type": meta.TokenTypeIDJAG, "token_type": "N_A", "expires_in": 300})
}
