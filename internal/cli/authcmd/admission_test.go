package authcmd_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// TestClientApproveRefuse: pending clients are listed with their status,
// `client approve` admits one, `client refuse` refuses another and
// revokes its live tokens, and both decisions are in the audit chain.
func TestClientApproveRefuse(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []*store.Client{
		{ID: "dyn-waiting", Kind: store.ClientDynamic, Name: "Waiting", Status: store.ClientPending, CreatedAt: now},
		{ID: "https://agent.example.com/client.json", Kind: store.ClientMetadataDocument, Name: "Agent", CreatedAt: now},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordAccessToken(ctx, &store.AccessToken{ID: "at-1", ClientID: "https://agent.example.com/client.json", Subject: "alice",
		Resource: "https://gw/mcp", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, err := run(t, dir, "", "client", "list")
	if err != nil || !strings.Contains(out, "PENDING (client approve dyn-waiting)") || !strings.Contains(out, "STATUS") {
		t.Fatalf("client list: %v\n%s", err, out)
	}
	if out, err := run(t, dir, "", "client", "approve", "dyn-waiting", "--reason", "known vendor"); err != nil || !strings.Contains(out, "approved client dyn-waiting") {
		t.Fatalf("approve: %v %s", err, out)
	}
	if out, err := run(t, dir, "", "client", "refuse", "https://agent.example.com/client.json"); err != nil || !strings.Contains(out, "refused client") {
		t.Fatalf("refuse: %v %s", err, out)
	}
	if _, err := run(t, dir, "", "client", "approve", "dyn-unknown"); err == nil || !strings.Contains(err.Error(), "no client") {
		t.Fatalf("approving an unknown client: %v", err)
	}

	s := openStore(t, dir)
	if c, err := s.GetClient(ctx, "dyn-waiting"); err != nil || c.Status != store.ClientApproved || !strings.HasPrefix(c.StatusBy, "cli:") {
		t.Fatalf("approved client = %+v, %v", c, err)
	}
	if c, err := s.GetClient(ctx, "https://agent.example.com/client.json"); err != nil || c.Status != store.ClientRefused {
		t.Fatalf("refused client = %+v, %v", c, err)
	}
	if revoked, err := s.IsAccessTokenRevoked(ctx, "at-1"); err != nil || !revoked {
		t.Fatalf("the refused client's token is not revoked: %v %v", revoked, err)
	}
	out, _ = run(t, dir, "", "client", "list")
	if !strings.Contains(out, "REFUSED") || !strings.Contains(out, "approved") {
		t.Fatalf("client list after the decisions:\n%s", out)
	}

	pub, err := audit.LoadPublicKey(filepath.Join(dir, audit.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, s.(*sqlite.Store), pub); err != nil || !rep.OK || rep.Records != 2 {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
	var got []string
	for r, err := range s.(*sqlite.Store).ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Action+" "+r.Target+" "+r.Error)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], cliaudit.ActionClientApproved+" dyn-waiting dynamic client approved (was pending)") ||
		!strings.Contains(got[0], `reason "known vendor"`) ||
		!strings.HasPrefix(got[1], cliaudit.ActionClientRefused+" https://agent.example.com/client.json cimd client refused") ||
		!strings.Contains(got[1], "1 live tokens revoked") {
		t.Fatalf("audit records:\n%s", strings.Join(got, "\n"))
	}
}
