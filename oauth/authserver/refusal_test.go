package authserver_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// outcome is the status and OAuth error code of a refused request; for
// authorization errors sent back to the client the status is 302 and the
// code comes from the redirect.
type outcome struct {
	status int
	code   string
	desc   string
}

func fromResponse(t *testing.T, resp *http.Response) outcome {
	t.Helper()
	if resp.StatusCode == http.StatusFound {
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return outcome{resp.StatusCode, loc.Query().Get("error"), loc.Query().Get("error_description")}
	}
	body, _ := io.ReadAll(resp.Body)
	var e meta.Error
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("HTTP %d with non-JSON body %q", resp.StatusCode, body)
	}
	return outcome{resp.StatusCode, e.Code, e.Description}
}

func fromToken(r *tokenResp) outcome {
	return outcome{r.Status, r.str("error"), r.str("error_description")}
}

// TestRefusals is the table of refusals required by issue 4: every row
// must be refused with the exact OAuth error code and HTTP status.
func TestRefusals(t *testing.T) {
	e := newEnv(t, nil)
	safe := newEnv(t, &envOptions{path: "/oauth", safeCIMD: true})
	ver, chal := pkce()
	pubRedirect := "http://127.0.0.1:5555/callback"
	okDoc := func(id string) string {
		return fmt.Sprintf(`{"client_id":%q,"client_name":"Doc App","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}`, id)
	}
	allowEnv := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.MetadataDocuments.AllowDomains = []string{"clients.example.test"} }})
	denyEnv := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) { o.MetadataDocuments.DenyDomains = []string{"127.0.0.1"} }})

	az := func(env *env, q url.Values) func(t *testing.T) outcome {
		return func(t *testing.T) outcome { return fromResponse(t, env.authorize(q.Encode(), "alice")) }
	}
	tok := func(form url.Values, id, secret string) func(t *testing.T) outcome {
		return func(t *testing.T) outcome { return fromToken(e.token(form, id, secret)) }
	}
	codeFor := func(clientID, redirect string) string { return e.code(authzQuery(clientID, redirect, chal)) }
	pubExchange := func(code, verifier, redirect string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}, "client_id": {"pub"}, "resource": {resourceURI}}
	}
	jwtBearer := func(assertion string) url.Values {
		return url.Values{"grant_type": {meta.GrantTypeJWTBearer}, "assertion": {assertion},
			"client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion(meta.RandomToken(8))}}
	}
	rsCall := func(env *env, path, token string) func(t *testing.T) outcome {
		return func(t *testing.T) outcome {
			resp, body := env.callRS(path, token)
			ch, err := meta.ParseBearerChallenge(resp.Header)
			if err != nil || ch == nil {
				t.Fatalf("no Bearer challenge: %v %q", err, resp.Header.Get("WWW-Authenticate"))
			}
			if ch.ResourceMetadata != env.rs.MetadataURL() {
				t.Errorf("resource_metadata = %q, want %q", ch.ResourceMetadata, env.rs.MetadataURL())
			}
			_ = body
			return outcome{resp.StatusCode, ch.Error, ch.Scope}
		}
	}

	// Tokens for the resource-server rows.
	ccToken := func(t *testing.T, res string, scope string) string {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {res}, "scope": {scope}}
		if res != resourceURI {
			f = url.Values{"grant_type": {"client_credentials"}, "resource": {res}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {e.clientAssertion(meta.RandomToken(8))}}
		}
		r := e.token(f, "", "")
		if r.Status != 200 {
			t.Fatalf("client_credentials: %d %v", r.Status, r.Body)
		}
		return r.str("access_token")
	}

	tests := []struct {
		name string
		run  func(t *testing.T) outcome
		want outcome
	}{
		// Authorization endpoint: shown to the user (not redirected).
		{"authorize unknown client", az(e, authzQuery("nobody", pubRedirect, chal)), outcome{400, "invalid_client", ""}},
		{"authorize redirect mismatch", az(e, authzQuery("web", "https://evil.example.test/cb", chal)), outcome{400, "invalid_request", ""}},
		{"authorize redirect path mismatch on loopback", az(e, authzQuery("pub", "http://127.0.0.1:5555/other", chal)), outcome{400, "invalid_request", ""}},
		{"authorize localhost port change", az(e, authzQuery("pub", "http://localhost:9999/callback", chal)), outcome{400, "invalid_request", ""}},
		{"authorize redirect with fragment", az(e, authzQuery("pub", "http://127.0.0.1/callback#x", chal)), outcome{400, "invalid_request", ""}},
		{"authorize repeated parameter", func(t *testing.T) outcome {
			return fromResponse(t, e.authorize(authzQuery("pub", pubRedirect, chal).Encode()+"&state=again", "alice"))
		}, outcome{400, "invalid_request", ""}},
		// Authorization endpoint: redirected back with the error.
		{"authorize plain PKCE method", az(e, authzQuery("pub", pubRedirect, chal, "code_challenge_method", "plain")), outcome{302, "invalid_request", ""}},
		{"authorize missing PKCE challenge", az(e, authzQuery("pub", pubRedirect, "", "code_challenge", "")), outcome{302, "invalid_request", ""}},
		{"authorize unknown resource", az(e, authzQuery("pub", pubRedirect, chal, "resource", "https://unknown.example.test/mcp")), outcome{302, "invalid_target", ""}},
		{"authorize missing resource", az(e, authzQuery("pub", pubRedirect, chal, "resource", "")), outcome{302, "invalid_target", ""}},
		{"authorize response_type token", az(e, authzQuery("pub", pubRedirect, chal, "response_type", "token")), outcome{302, "unsupported_response_type", ""}},
		{"authorize unknown scope", az(e, authzQuery("pub", pubRedirect, chal, "scope", "mcp:read root")), outcome{302, "invalid_scope", ""}},
		// Client ID Metadata Documents.
		{"CIMD mismatched client_id", func(t *testing.T) outcome {
			id := e.cimdURL("/mismatch.json", serveDoc(okDoc("https://other.example.test/client.json")))
			return az(e, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD too large", func(t *testing.T) outcome {
			var id string
			id = e.cimdURL("/large.json", func(w http.ResponseWriter, r *http.Request) {
				serveDoc(strings.Replace(okDoc(id), `"Doc App"`, `"`+strings.Repeat("x", 6000)+`"`, 1))(w, r)
			})
			return az(e, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD redirecting", func(t *testing.T) outcome {
			target := e.cimdURL("/target.json", serveDoc("{}"))
			id := e.cimdURL("/redirect.json", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusFound) })
			return az(e, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD on a private address", func(t *testing.T) outcome {
			var id string
			id = safe.cimdURL("/private.json", func(w http.ResponseWriter, r *http.Request) { serveDoc(okDoc(id))(w, r) })
			return az(safe, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD denied domain", func(t *testing.T) outcome {
			var id string
			id = denyEnv.cimdURL("/denied.json", func(w http.ResponseWriter, r *http.Request) { serveDoc(okDoc(id))(w, r) })
			return az(denyEnv, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD domain not on the allow list", func(t *testing.T) outcome {
			var id string
			id = allowEnv.cimdURL("/notallowed.json", func(w http.ResponseWriter, r *http.Request) { serveDoc(okDoc(id))(w, r) })
			return az(allowEnv, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD document that is not JSON", func(t *testing.T) outcome {
			id := e.cimdURL("/html.json", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				io.WriteString(w, "<html></html>")
			})
			return az(e, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD document with duplicate keys", func(t *testing.T) outcome {
			var id string
			id = e.cimdURL("/dup.json", func(w http.ResponseWriter, r *http.Request) {
				serveDoc(strings.Replace(okDoc(id), `"client_name":"Doc App"`, `"client_name":"Doc App","client_name":"Other"`, 1))(w, r)
			})
			return az(e, authzQuery(id, "http://127.0.0.1/cb", chal))(t)
		}, outcome{400, "invalid_client", ""}},
		{"CIMD redirect_uri not in the document", func(t *testing.T) outcome {
			var id string
			id = e.cimdURL("/norr.json", func(w http.ResponseWriter, r *http.Request) { serveDoc(okDoc(id))(w, r) })
			return az(e, authzQuery(id, "https://attacker.example.test/cb", chal))(t)
		}, outcome{400, "invalid_request", ""}},
		{"CIMD client using a secret", func(t *testing.T) outcome {
			var id string
			id = e.cimdURL("/secret.json", func(w http.ResponseWriter, r *http.Request) { serveDoc(okDoc(id))(w, r) })
			return tok(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"x"}, "resource": {resourceURI}}, "", "")(t)
		}, outcome{401, "invalid_client", ""}},
		// Token endpoint: authorization code.
		{"wrong PKCE verifier", func(t *testing.T) outcome {
			other, _ := pkce()
			return tok(pubExchange(codeFor("pub", pubRedirect), other, pubRedirect), "", "")(t)
		}, outcome{400, "invalid_grant", ""}},
		{"missing PKCE verifier", func(t *testing.T) outcome {
			return tok(pubExchange(codeFor("pub", pubRedirect), "", pubRedirect), "", "")(t)
		}, outcome{400, "invalid_request", ""}},
		{"replayed code", func(t *testing.T) outcome {
			f := pubExchange(codeFor("pub", pubRedirect), ver, pubRedirect)
			if r := e.token(f, "", ""); r.Status != 200 {
				t.Fatalf("first redemption: %d %v", r.Status, r.Body)
			}
			return tok(f, "", "")(t)
		}, outcome{400, "invalid_grant", ""}},
		{"redirect_uri mismatch at token", func(t *testing.T) outcome {
			return tok(pubExchange(codeFor("pub", pubRedirect), ver, "http://127.0.0.1:5556/callback"), "", "")(t)
		}, outcome{400, "invalid_grant", ""}},
		{"code issued to another client", func(t *testing.T) outcome {
			c := codeFor("pub", pubRedirect)
			return tok(url.Values{"grant_type": {"authorization_code"}, "code": {c}, "code_verifier": {ver}, "redirect_uri": {pubRedirect}}, "web", webSecret)(t)
		}, outcome{400, "invalid_grant", ""}},
		{"token resource differs from authorization", func(t *testing.T) outcome {
			f := pubExchange(codeFor("pub", pubRedirect), ver, pubRedirect)
			f.Set("resource", otherRes)
			return tok(f, "", "")(t)
		}, outcome{400, "invalid_target", ""}},
		// Refresh tokens.
		{"replayed refresh token", func(t *testing.T) outcome {
			r := e.token(pubExchange(codeFor("pub", pubRedirect), ver, pubRedirect), "", "")
			old := r.str("refresh_token")
			r2 := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}, "client_id": {"pub"}}, "", "")
			if r2.Status != 200 {
				t.Fatalf("first refresh: %d %v", r2.Status, r2.Body)
			}
			replay := fromToken(e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}, "client_id": {"pub"}}, "", ""))
			// The family is revoked: the rotated token and its access token die too.
			if r3 := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2.str("refresh_token")}, "client_id": {"pub"}}, "", ""); r3.Status != 400 || r3.str("error") != "invalid_grant" {
				t.Errorf("rotated refresh token still works after reuse: %d %v", r3.Status, r3.Body)
			}
			if resp, _ := e.callRS("/mcp", r2.str("access_token")); resp.StatusCode != 401 {
				t.Errorf("access token of the revoked family: HTTP %d, want 401", resp.StatusCode)
			}
			return replay
		}, outcome{400, "invalid_grant", ""}},
		{"refresh token of another client", func(t *testing.T) outcome {
			r := e.token(pubExchange(codeFor("pub", pubRedirect), ver, pubRedirect), "", "")
			return tok(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}}, "web", webSecret)(t)
		}, outcome{400, "invalid_grant", ""}},
		// Client authentication.
		{"wrong client secret", tok(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}}, "svc", "wrong"), outcome{401, "invalid_client", ""}},
		{"two client authentication methods", tok(url.Values{"grant_type": {"client_credentials"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "svc", svcSecret), outcome{400, "invalid_request", ""}},
		{"replayed client assertion", func(t *testing.T) outcome {
			a := e.clientAssertion("assertion-replay")
			f := url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer}, "client_assertion": {a}}
			if r := e.token(f, "", ""); r.Status != 200 {
				t.Fatalf("first use: %d %v", r.Status, r.Body)
			}
			return tok(f, "", "")(t)
		}, outcome{401, "invalid_client", ""}},
		{"client assertion with wrong aud", tok(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer},
			"client_assertion": {e.clientAssertion("aud-1", func(c map[string]any) { c["aud"] = "https://elsewhere.example.test" })}}, "", ""), outcome{401, "invalid_client", ""}},
		{"client assertion signed by another key", tok(url.Values{"grant_type": {"client_credentials"}, "resource": {resourceURI}, "client_assertion_type": {meta.ClientAssertionTypeJWTBearer},
			"client_assertion": {signJWT(t, e.idpKey, "client-1", "", map[string]any{"iss": "jwtsvc", "sub": "jwtsvc", "aud": e.issuer, "jti": "k1", "exp": time.Now().Add(time.Minute).Unix()})}}, "", ""), outcome{401, "invalid_client", ""}},
		{"public client asks for client_credentials", tok(url.Values{"grant_type": {"client_credentials"}, "client_id": {"pub"}, "resource": {resourceURI}}, "", ""), outcome{400, "unauthorized_client", ""}},
		{"unsupported grant type", tok(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePass}}, "svc", svcSecret), outcome{400, "unsupported_grant_type", ""}},
		{"client_credentials unknown resource", tok(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {"https://unknown.example.test/mcp"}}, "", ""), outcome{400, "invalid_target", ""}},
		{"client_credentials scope beyond client", tok(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}, "scope": {"mcp:admin"}}, "", ""), outcome{400, "invalid_scope", ""}},
		// ID-JAG (jwt-bearer).
		{"ID-JAG wrong typ", func(t *testing.T) outcome {
			c := map[string]any{"iss": idpIssuer, "sub": "u", "aud": e.issuer, "client_id": "jwtsvc", "resource": resourceURI, "jti": "typ-1", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
			return tok(jwtBearer(signJWT(t, e.idpKey, "idp-1", "JWT", c)), "", "")(t)
		}, outcome{400, "invalid_grant", ""}},
		{"ID-JAG wrong aud", tok(jwtBearer(e.idJAG("aud-x", func(c map[string]any) { c["aud"] = "https://other-as.example.test" })), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG foreign client_id", tok(jwtBearer(e.idJAG("cid-x", func(c map[string]any) { c["client_id"] = "someone-else" })), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG untrusted issuer", tok(jwtBearer(e.idJAG("iss-x", func(c map[string]any) { c["iss"] = "https://rogue-idp.example.test" })), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG expired", tok(jwtBearer(e.idJAG("exp-x", func(c map[string]any) {
			c["exp"] = time.Now().Add(-10 * time.Minute).Unix()
			c["iat"] = time.Now().Add(-20 * time.Minute).Unix()
		})), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG without resource", tok(jwtBearer(e.idJAG("res-x", func(c map[string]any) { delete(c, "resource") })), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG signed by another key", tok(jwtBearer(signJWT(t, e.clientKey, "idp-1", meta.IDJAGJWTType, map[string]any{"iss": idpIssuer, "sub": "u", "aud": e.issuer, "client_id": "jwtsvc",
			"resource": resourceURI, "jti": "key-x", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})), "", ""), outcome{400, "invalid_grant", ""}},
		{"ID-JAG replayed", func(t *testing.T) outcome {
			a := e.idJAG("replay-1")
			if r := e.token(jwtBearer(a), "", ""); r.Status != 200 {
				t.Fatalf("first use: %d %v", r.Status, r.Body)
			}
			return tok(jwtBearer(a), "", "")(t)
		}, outcome{400, "invalid_grant", ""}},
		// Dynamic registration.
		{"registration with plain-http redirect", func(t *testing.T) outcome {
			resp, err := http.Post(e.url("/register"), "application/json", strings.NewReader(`{"redirect_uris":["http://app.example.test/cb"],"token_endpoint_auth_method":"none"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			return fromResponse(t, resp)
		}, outcome{400, "invalid_redirect_uri", ""}},
		// Resource server.
		{"RS no token", rsCall(e, "/mcp", ""), outcome{401, "", "mcp:read"}},
		{"RS token with wrong audience", func(t *testing.T) outcome { return rsCall(e, "/mcp", ccToken(t, otherRes, "other"))(t) }, outcome{401, "invalid_token", "mcp:read"}},
		{"RS expired token", func(t *testing.T) outcome {
			expired := newEnv(t, &envOptions{path: "/oauth", mutate: func(o *authserver.Options) {
				o.Now = func() time.Time { return time.Now().Add(-3 * time.Hour) }
			}})
			r := expired.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {svcSecret}, "resource": {resourceURI}}, "", "")
			if r.Status != 200 {
				t.Fatalf("token: %d %v", r.Status, r.Body)
			}
			return rsCall(expired, "/mcp", r.str("access_token"))(t)
		}, outcome{401, "invalid_token", "mcp:read"}},
		{"RS revoked token", func(t *testing.T) outcome {
			at := ccToken(t, resourceURI, "")
			if r := e.post("/revoke", url.Values{"token": {at}, "client_id": {"svc"}, "client_secret": {svcSecret}}, "", ""); r.Status != 200 {
				t.Fatalf("revoke: %d %v", r.Status, r.Body)
			}
			return rsCall(e, "/mcp", at)(t)
		}, outcome{401, "invalid_token", "mcp:read"}},
		{"RS token from an untrusted issuer", rsCall(e, "/mcp", signJWT(t, e.idpKey, "idp-1", "at+jwt", map[string]any{"iss": idpIssuer, "sub": "u", "aud": resourceURI, "client_id": "x", "scope": "mcp:read", "jti": "j", "exp": time.Now().Add(time.Hour).Unix()})), outcome{401, "invalid_token", "mcp:read"}},
		{"RS insufficient scope (middleware)", func(t *testing.T) outcome { return rsCall(e, "/mcp", ccToken(t, resourceURI, "mcp:write"))(t) }, outcome{403, "insufficient_scope", "mcp:write mcp:read"}},
		{"RS insufficient scope (handler)", func(t *testing.T) outcome { return rsCall(e, "/mcp/admin", ccToken(t, resourceURI, "mcp:read"))(t) }, outcome{403, "insufficient_scope", "mcp:read mcp:admin"}},
	}
	if len(tests) < 30 {
		t.Fatalf("only %d refusals", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.run(t)
			if got.status != tt.want.status || got.code != tt.want.code {
				t.Fatalf("got HTTP %d %q (%s), want HTTP %d %q", got.status, got.code, got.desc, tt.want.status, tt.want.code)
			}
			if tt.want.desc != "" && got.desc != tt.want.desc {
				t.Errorf("got %q, want %q", got.desc, tt.want.desc)
			}
			if tt.want.code != "" && !strings.HasPrefix(tt.name, "RS ") && got.desc == "" {
				t.Errorf("no error_description")
			}
		})
	}
}
