package authserver_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/resource"
	"github.com/mcpgate/mcpgate/store"
)

// Example mounts the authorization server under /oauth and protects /mcp
// with a resource server that checks tokens against it, on one mux.
func Example() {
	ctx := context.Background()
	const origin = "https://gw.example.com"
	st := store.NewMemory() // or sqlite.Open(ctx, path)

	as, err := authserver.New(ctx, origin+"/oauth", st, &authserver.Options{
		Resources: []authserver.Resource{{URI: origin + "/mcp", Scopes: []string{"mcp:tools"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	rs, err := resource.New(origin+"/mcp",
		resource.NewJWTVerifier(as.Issuer(), origin+"/mcp", as, &resource.JWTOptions{Revocation: as}),
		&resource.Options{AuthorizationServers: []string{as.Issuer()}, ScopesSupported: []string{"mcp:tools"}})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	as.Mount(mux) // /oauth/... and the /.well-known/... metadata URIs
	rs.Mount(mux) // /.well-known/oauth-protected-resource/mcp
	mux.Handle("/mcp", rs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := resource.PrincipalFromContext(r.Context())
		fmt.Fprintln(w, "hello", p.Subject)
	})))

	fmt.Println(as.Metadata().AuthorizationEndpoint)
	fmt.Println(rs.MetadataURL())
	fmt.Println(as.Patterns()[0])
	// Output:
	// https://gw.example.com/oauth/authorize
	// https://gw.example.com/.well-known/oauth-protected-resource/mcp
	// /.well-known/oauth-authorization-server/oauth
}
