package inventory_test

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/inventory"
)

// TestWalkSessionWithoutClient checks the walk through an upstream of a
// session opened without OAuth (no client), as over stdio.
func TestWalkSessionWithoutClient(t *testing.T) {
	g := &inventory.Graph{
		Users:     []inventory.User{{Name: "anonymous"}},
		Upstreams: []inventory.Upstream{{Name: "fs", Configured: true, Transport: "stdio", Command: []string{"fs"}, CredentialType: "none", Tools: []inventory.Tool{{Name: "read", Digest: "d", ApprovedDigest: "d", State: "approved"}, {Name: "new", Digest: "e", Pending: true, State: "pending"}}}},
		Sessions:  []inventory.Session{{ID: "local-1", Principal: "anonymous", Transport: "stdio"}},
	}
	n, err := g.Walk("upstream", "fs")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n.Render(&b)
	for _, want := range []string{"upstream fs — stdio: fs; credential none; owner -", "    tool read —", "  session local-1 — of anonymous; stdio"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "tool new") {
		t.Errorf("a pending tool is shown as reachable:\n%s", b.String())
	}
	n, err = g.Walk("user", "anonymous")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Children) != 1 || n.Children[0].Kind != "session" || len(n.Children[0].Children) != 1 {
		t.Errorf("user walk: %+v", n)
	}
}
