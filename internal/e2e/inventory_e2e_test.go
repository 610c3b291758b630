package e2e

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
)

// runInventory runs an mcpgate inventory command on dataDir, as an
// administrator would while the gateway runs (or after it stopped).
func runInventory(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(inventorycmd.Commands(func() string { return dataDir })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("mcpgate %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestInventoryFromTheDatabase signs alice in through the CIMD client (real
// login and consent), opens a session, lists the tools and starts a task,
// and checks that `mcpgate inventory --json` and `mcpgate inventory show
// user alice`, reading only the database, show all of it: the user, the
// client and its grant, the live session with its transport and source
// address, the task, the upstream with its transport, URL, credential type
// and owner, and the tools with their fingerprints and approval state. Set
// MCPGATE_INVENTORY_DOC=1 to print the output (docs/inventory.md shows it).
func TestInventoryFromTheDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w := newGovernedWorld(t, controlsUpstream(), controlPolicies, func(c *config.Config) { c.Upstreams[0].Owner = "platform-team" })
	recv := newReceiver(t, newBrowser("alice", "alice-password"))
	w.cimdDoc, _ = json.Marshal(map[string]any{
		"client_id": w.cimd.URL + "/client.json", "client_name": "E2E Desktop Agent",
		"redirect_uris": []string{recv.RedirectURL()}, "grant_types": []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types": []string{meta.ResponseTypeCode}, "token_endpoint_auth_method": meta.AuthMethodNone,
	})
	alice := w.userSession(ctx, t, "alice", recv)
	toolNames(ctx, t, alice)
	created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "long_job"}, &mcp.TaskMetadata{TTL: 600_000})
	if err != nil {
		t.Fatal(err)
	}
	clientID := w.cimd.URL + "/client.json"

	var g struct {
		Users []struct {
			Name  string
			Local bool
		}
		Clients []struct {
			ID, RegistrationMethod, MetadataDigest string
			FirstSeen, LastSeen                    time.Time
		}
		Grants []struct {
			ID, User, Client string
		}
		Sessions []struct {
			ID, Principal, ClientID, Grant, Transport, SourceAddr string
			Created                                               time.Time
		}
		Tasks []struct {
			ID, Owner, Upstream, Status string
			TTLSeconds                  int64
			Created                     time.Time
		}
		Upstreams []struct {
			Name, Transport, URL, CredentialType, Owner string
			Configured                                  bool
			Tools                                       []struct{ Name, Digest, State string }
		}
	}
	raw := runInventory(t, w.dataDir, "inventory", "--json")
	if err := json.Unmarshal([]byte(raw), &g); err != nil {
		t.Fatalf("inventory --json: %v\n%s", err, raw)
	}
	if len(g.Sessions) != 1 {
		t.Fatalf("sessions = %+v, want alice's", g.Sessions)
	}
	s := g.Sessions[0]
	if s.ID != alice.ID() || s.Principal != "alice" || s.ClientID != clientID || s.Grant == "" || s.Transport != "streamable" || s.SourceAddr != "127.0.0.1" || s.Created.IsZero() {
		t.Errorf("session = %+v", s)
	}
	if len(g.Tasks) != 1 || g.Tasks[0].ID != created.Task.TaskID || g.Tasks[0].Owner != "alice" || g.Tasks[0].Upstream != "files" || g.Tasks[0].TTLSeconds == 0 {
		t.Errorf("tasks = %+v", g.Tasks)
	}
	if len(g.Upstreams) != 1 || !g.Upstreams[0].Configured || g.Upstreams[0].Transport != "auto" || !strings.HasPrefix(g.Upstreams[0].URL, "http://127.0.0.1:") ||
		g.Upstreams[0].CredentialType != "none" || g.Upstreams[0].Owner != "platform-team" || len(g.Upstreams[0].Tools) == 0 {
		t.Errorf("upstreams = %+v", g.Upstreams)
	}
	for _, tool := range g.Upstreams[0].Tools {
		if len(tool.Digest) != 64 || tool.State != "approved" {
			t.Errorf("tool %+v: want a SHA-256 and approved", tool)
		}
	}
	foundClient := false
	for _, c := range g.Clients {
		if c.ID == clientID {
			foundClient = c.RegistrationMethod == "cimd" && c.MetadataDigest != "" && !c.FirstSeen.IsZero() && !c.LastSeen.IsZero()
		}
	}
	if !foundClient {
		t.Errorf("clients = %+v, want the CIMD client with its metadata digest and first/last seen", g.Clients)
	}
	if len(g.Grants) == 0 || g.Grants[0].User != "alice" || g.Grants[0].ID != s.Grant {
		t.Errorf("grants = %+v, want alice's, the session's", g.Grants)
	}

	show := runInventory(t, w.dataDir, "inventory", "show", "user", "alice")
	for _, want := range []string{"user alice", "client " + clientID, "grant " + s.Grant, "session " + s.ID, "streamable from 127.0.0.1",
		"upstream files", "owner platform-team", "credential gateway:none", "tool report", "task " + created.Task.TaskID} {
		if !strings.Contains(show, want) {
			t.Errorf("show user alice: no %q in\n%s", want, show)
		}
	}
	if os.Getenv("MCPGATE_INVENTORY_DOC") != "" {
		t.Logf("mcpgate inventory --json:\n%s", raw)
		t.Logf("mcpgate inventory show user alice:\n%s", show)
		t.Logf("mcpgate inventory:\n%s", runInventory(t, w.dataDir, "inventory"))
	}

	// The session ends with the client; a stopped gateway leaves none live.
	alice.Close()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(runInventory(t, w.dataDir, "inventory", "list", "--kind", "sessions"), s.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the ended session is still listed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
