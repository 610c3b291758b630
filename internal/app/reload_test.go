package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store"
)

// TestReload: a bad configuration is rejected with its errors and changes
// nothing; a good one adds and removes upstreams, reloads the policy
// files, applies max_inflight and names what needs a restart; both are
// audited as config.reload.
func TestReload(t *testing.T) {
	cfg := testConfig(t)
	pol := filepath.Join(t.TempDir(), "p.cedar")
	if err := os.WriteFile(pol, []byte("permit(principal, action, resource);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Policy = &config.Policy{Paths: []string{pol}}
	ctx := context.Background()
	a, err := app.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var n []string
		for _, st := range a.Gateway.UpstreamStates() {
			n = append(n, st.Name)
		}
		return n
	}

	// Rejected: an upstream with neither url nor command, and a policy
	// file that does not parse.
	bad := *cfg
	bad.Upstreams = []config.Upstream{{Name: "broken"}}
	if _, err := a.Reload(ctx, &bad); err == nil {
		t.Fatal("a configuration with an invalid upstream was accepted")
	}
	badPol := filepath.Join(t.TempDir(), "bad.cedar")
	if err := os.WriteFile(badPol, []byte("permit(principal, action"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad = *cfg
	bad.Policy = &config.Policy{Paths: []string{badPol}}
	if _, err := a.Reload(ctx, &bad); err == nil || !strings.Contains(err.Error(), "policies") {
		t.Fatalf("a configuration whose policies do not load: %v", err)
	}
	if got := names(); !slices.Equal(got, []string{"up"}) {
		t.Fatalf("upstreams after rejected reloads: %v", got)
	}

	// Accepted.
	if err := os.WriteFile(pol, []byte("permit(principal, action, resource);\npermit(principal, action, resource);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := *cfg
	good.Listen = "127.0.0.1:2"
	good.Upstreams = []config.Upstream{{Name: "other", URL: "http://127.0.0.1:1/other"}}
	good.Server = &config.Server{MaxInflight: 7}
	res, err := a.Reload(ctx, &good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Added, []string{"other"}) || !slices.Equal(res.Removed, []string{"up"}) {
		t.Errorf("upstream changes: %+v", res.UpstreamChanges)
	}
	if !res.PoliciesReloaded || res.PolicyVersion == "" {
		t.Errorf("policies not reloaded: %+v", res)
	}
	if !slices.Contains(res.Applied, "server.max_inflight") {
		t.Errorf("applied: %v", res.Applied)
	}
	if !slices.Equal(res.NeedRestart, []string{"listen"}) {
		t.Errorf("need restart: %v", res.NeedRestart)
	}
	if got := names(); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("upstreams after the reload: %v", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := datadir.OpenExisting(ctx, cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var recs []*store.AuditRecord
	for r, err := range db.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == "config.reload" {
			recs = append(recs, r)
		}
	}
	if len(recs) != 3 {
		t.Fatalf("%d config.reload records, want 3", len(recs))
	}
	for i, r := range recs[:2] {
		if r.Outcome != "error" || !strings.Contains(r.Error, "configuration rejected") {
			t.Errorf("rejected reload %d recorded as %q %q", i, r.Outcome, r.Error)
		}
	}
	if r := recs[2]; r.Outcome != "ok" || !strings.Contains(r.Target, "upstreams added: other; removed: up") || !strings.Contains(r.Target, "need a restart (not applied): listen") {
		t.Errorf("accepted reload recorded as %q %q", r.Outcome, r.Target)
	}
}
