package authserver_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// These tests drive the server with the project's own OAuth client
// (oauth/oauthclient): discovery through the resource's 401 challenge and
// protected resource metadata, then each grant, then a call to the
// protected resource.

func challengeFor(t *testing.T, e *env, path, token string) *meta.BearerChallenge {
	t.Helper()
	resp, _ := e.callRS(path, token)
	ch, err := meta.ParseBearerChallenge(resp.Header)
	if err != nil || ch == nil {
		t.Fatalf("no challenge (HTTP %d): %v", resp.StatusCode, err)
	}
	return ch
}

func loopbackClient() *http.Client {
	return safehttp.NewClient(&safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true, Timeout: 10 * time.Second})
}

func headless(approveAs string) *oauthclient.HeadlessHandler {
	h := oauthclient.NewHeadlessHandler(&safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true})
	h.Header = http.Header{"X-Test-Approve-As": {approveAs}}
	return h
}

func TestOAuthClientInterop(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, &envOptions{path: "/oauth", localResource: true})

	t.Run("authorization code with dynamic registration and step-up", func(t *testing.T) {
		a, err := oauthclient.NewAuthorizer(&oauthclient.Config{ServerURL: e.resource, RedirectURL: "http://127.0.0.1:5/callback",
			AuthorizationHandler: headless("alice"), HTTPClient: loopbackClient()})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Authorize(ctx, challengeFor(t, e, "/mcp", ""))
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if resp, body := e.callRS("/mcp", tok.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("RS: %d %s", resp.StatusCode, body)
		}
		// Step-up: /mcp/admin needs mcp:admin.
		ch := challengeFor(t, e, "/mcp/admin", tok.AccessToken)
		if ch.Error != "insufficient_scope" {
			t.Fatalf("challenge %+v", ch)
		}
		tok2, err := a.HandleInsufficientScope(ctx, ch, tok)
		if err != nil {
			t.Fatalf("step-up: %v", err)
		}
		if !slices.Contains(tok2.Scopes(), "mcp:admin") || !slices.Contains(tok2.Scopes(), "mcp:read") {
			t.Fatalf("step-up scopes %v", tok2.Scopes())
		}
		if resp, body := e.callRS("/mcp/admin", tok2.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("RS admin: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("client ID metadata document", func(t *testing.T) {
		var id string
		id = e.cimdURL("/mcp-client.json", func(w http.ResponseWriter, r *http.Request) {
			serveDoc(`{"client_id":"`+id+`","client_name":"Interop CIMD","redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)(w, r)
		})
		a, err := oauthclient.NewAuthorizer(&oauthclient.Config{ServerURL: e.resource, RedirectURL: "http://127.0.0.1:7/callback", ClientIDMetadataURL: id,
			DisableDynamicRegistration: true, AuthorizationHandler: headless("alice"), HTTPClient: loopbackClient()})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Authorize(ctx, challengeFor(t, e, "/mcp", ""))
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		claims := decodeJWT(t, tok.AccessToken)
		if claims["client_id"] != id || claims["aud"] != e.resource {
			t.Fatalf("claims %v", claims)
		}
	})

	t.Run("client credentials with private_key_jwt", func(t *testing.T) {
		a, err := oauthclient.NewAuthorizer(&oauthclient.Config{ServerURL: e.resource, Flow: oauthclient.FlowClientCredentials,
			Client: &oauthclient.ClientAuth{ClientID: "jwtsvc", PrivateKey: e.clientKey, KeyID: "client-1"}, HTTPClient: loopbackClient()})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Authorize(ctx, challengeFor(t, e, "/mcp", ""))
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if resp, body := e.callRS("/mcp", tok.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("RS: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("jwt-bearer with an ID-JAG", func(t *testing.T) {
		a, err := oauthclient.NewAuthorizer(&oauthclient.Config{ServerURL: e.resource, Flow: oauthclient.FlowJWTBearer,
			Client: &oauthclient.ClientAuth{ClientID: "jwtsvc", PrivateKey: e.clientKey, KeyID: "client-1"}, HTTPClient: loopbackClient(),
			Assertion: func(context.Context) (string, error) {
				return e.idJAG(meta.RandomToken(8), func(c map[string]any) { c["resource"] = e.resource }), nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Authorize(ctx, challengeFor(t, e, "/mcp", ""))
		if err != nil {
			t.Fatalf("Authorize: %v", err)
		}
		if tok.RefreshToken != "" {
			t.Fatal("jwt-bearer grant returned a refresh token")
		}
		if resp, body := e.callRS("/mcp", tok.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("RS: %d %s", resp.StatusCode, body)
		}
	})

}
