// Command authserver-fixture runs mcpgate's authorization server on a
// loopback address with one pre-registered client whose authorization
// requests are approved automatically, for the conformance suite's
// `conformance authorization` scenarios (scripts/conformance-authorization.sh).
//
// It prints "ISSUER <url>" on stdout once it is listening and runs until
// killed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "authserver-fixture:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "loopback listen address")
	path := flag.String("issuer-path", "", "issuer path prefix, e.g. /oauth")
	clientID := flag.String("client-id", "conformance-client", "pre-registered client id")
	secret := flag.String("client-secret", "", "client secret (empty: a public client)")
	redirect := flag.String("redirect-uri", "http://127.0.0.1:3000/callback", "registered redirect URI")
	resource := flag.String("resource", "http://127.0.0.1:3000/mcp", "protected resource URI")
	user := flag.String("user", "conformance-user", "subject the fixture approves as")
	noPublic := flag.Bool("no-public-clients", false, "refuse public clients (\"none\" is then not advertised)")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "::1" && host != "[::1]") {
		return errors.New("-addr must be a loopback address")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String() + strings.TrimSuffix(*path, "/")
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx := context.Background()
	st := store.NewMemory()
	method := meta.AuthMethodNone
	c := &store.Client{ID: *clientID, Kind: store.ClientPreRegistered, Name: "Conformance suite", RedirectURIs: []string{*redirect},
		GrantTypes: []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken}, CreatedAt: time.Now()}
	if *secret != "" {
		method = meta.AuthMethodClientSecretBasic
		c.SecretHash = store.Digest(*secret)
	}
	c.TokenEndpointAuthMethod = method
	if err := st.CreateClient(ctx, c); err != nil {
		return err
	}
	as, err := authserver.New(ctx, issuer, st, &authserver.Options{
		Resources:            []authserver.Resource{{URI: *resource, Scopes: []string{"mcp:tools", "mcp:resources"}}},
		DisablePublicClients: *noPublic,
		Logger:               log,
		AutoApprove: func(r *http.Request, client *store.Client, _ []string) (string, bool) {
			return *user, client.ID == *clientID
		},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	as.Mount(mux)
	fmt.Printf("ISSUER %s\n", issuer)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
