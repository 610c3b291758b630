package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
)

// authContext is the scenario data the suite passes in
// MCP_CONFORMANCE_CONTEXT for the auth scenarios that need it.
type authContext struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	IdPClientID      string `json:"idp_client_id"`
	IdPIDToken       string `json:"idp_id_token"`
	IdPIssuer        string `json:"idp_issuer"`
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
	ValidJWT         string `json:"valid_jwt"`
}

// authConfig builds the OAuth client configuration for an auth scenario.
func authConfig(e *env) (*oauthclient.Config, error) {
	var ac authContext
	if e.context != "" {
		if err := json.Unmarshal([]byte(e.context), &ac); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", envContext, err)
		}
	}
	// The suite's servers live on loopback over plain HTTP; nothing else is
	// relaxed.
	safe := &safehttp.Options{AllowLoopback: true, AllowInsecureLoopback: true}
	cfg := &oauthclient.Config{
		ServerURL:            e.serverURL,
		SafeHTTP:             safe,
		RedirectURL:          "http://localhost:3000/callback",
		AuthorizationHandler: oauthclient.NewHeadlessHandler(safe),
		ClientIDMetadataURL:  "https://conformance-test.local/client-metadata.json",
		Legacy20250326:       true,
		DPoP:                 true,
	}
	switch e.scenario {
	case "auth/pre-registration":
		cfg.Client = &oauthclient.ClientAuth{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret}
	case "auth/client-credentials-basic":
		cfg.Flow = oauthclient.FlowClientCredentials
		cfg.Client = &oauthclient.ClientAuth{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret}
	case "auth/client-credentials-jwt":
		key, err := oauthclient.ParsePrivateKeyPEM([]byte(ac.PrivateKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
		cfg.Flow = oauthclient.FlowClientCredentials
		cfg.Client = &oauthclient.ClientAuth{ClientID: ac.ClientID, PrivateKey: key, SigningAlgorithm: ac.SigningAlgorithm}
	case "auth/wif-jwt-bearer":
		cfg.Flow = oauthclient.FlowJWTBearer
		cfg.Client = &oauthclient.ClientAuth{ClientID: ac.ClientID}
		jwt := ac.ValidJWT
		cfg.Assertion = func(context.Context) (string, error) { return jwt, nil }
	case "auth/enterprise-managed-authorization", "auth/cross-app-access-complete-flow":
		cfg.Flow = oauthclient.FlowEnterprise
		cfg.Client = &oauthclient.ClientAuth{ClientID: ac.ClientID, ClientSecret: ac.ClientSecret}
		tok := ac.IdPIDToken
		cfg.Enterprise = &oauthclient.Enterprise{
			IDToken:          func(context.Context) (string, error) { return tok, nil },
			IdPTokenEndpoint: ac.IdPTokenEndpoint,
			IdPIssuer:        ac.IdPIssuer,
			IdPClient:        &oauthclient.ClientAuth{ClientID: ac.IdPClientID},
		}
	}
	return cfg, nil
}

// runAuth plays the auth/* scenarios: the suite starts a protected MCP
// server and an authorization server; the client authorizes as the
// scenario describes (discovery, registration or CIMD or pre-registered
// credentials, PKCE, step-up, client credentials, enterprise-managed
// authorization), then initializes, lists the tools and calls each of
// them (the call is what triggers a step-up in auth/scope-step-up).
func runAuth(ctx context.Context, e *env) error {
	cfg, err := authConfig(e)
	if err != nil {
		return err
	}
	tr, err := oauthclient.NewTransport(http.DefaultTransport, cfg)
	if err != nil {
		return fmt.Errorf("oauth transport: %w", err)
	}
	cs, err := connect(ctx, e, &connectOptions{httpClient: &http.Client{Transport: tr}})
	if err != nil {
		return err
	}
	defer closeSession(e, cs)
	tools, err := listAllTools(ctx, cs)
	if err != nil {
		return err
	}
	for _, t := range tools {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: t.Name, Arguments: jsontext.Value(`{}`)})
		if err != nil {
			return fmt.Errorf("tools/call %s: %w", t.Name, err)
		}
		e.logger.Info("tool called", "tool", t.Name, "isError", res.IsError)
	}
	return nil
}
