package oauthclient_test

import (
	"context"
	"log"
	"net/http"

	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// An interactive client: the browser is opened at the authorization URL and
// the redirect comes back to a loopback listener.
func ExampleNewTransport() {
	recv, err := oauthclient.NewLoopbackReceiver(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Close()
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL:            "https://mcp.example.com/mcp",
		ClientIDMetadataURL:  "https://app.example.com/oauth/client.json",
		RedirectURL:          recv.RedirectURL(),
		AuthorizationHandler: recv,
		TokenStore:           oauthclient.NewMemoryTokenStore(),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = &http.Client{Transport: tr} // hand this to the MCP Streamable HTTP client
}

// A machine-to-machine client using the client credentials extension with
// private_key_jwt.
func ExampleNewTransport_clientCredentials() {
	key, err := oauthclient.ParsePrivateKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\n...")) // from configuration
	if err != nil {
		return
	}
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL: "https://mcp.example.com/mcp",
		Flow:      oauthclient.FlowClientCredentials,
		Client:    &oauthclient.ClientAuth{ClientID: "my-service", PrivateKey: key},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = &http.Client{Transport: tr}
}

// Enterprise-managed authorization: the ID token from single sign-on is
// exchanged at the IdP for an ID-JAG, which buys the MCP access token.
func ExampleNewTransport_enterprise() {
	idToken := func(ctx context.Context) (string, error) { return "eyJ...", nil } // from the SSO login
	tr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL: "https://mcp.example.com/mcp",
		Flow:      oauthclient.FlowEnterprise,
		Client:    &oauthclient.ClientAuth{ClientID: "mcp-client", ClientSecret: "secret"},
		Enterprise: &oauthclient.Enterprise{
			IDToken:   idToken,
			IdPIssuer: "https://idp.example.com",
		},
		SafeHTTP: &safehttp.Options{}, // strict defaults
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = &http.Client{Transport: tr}
}
