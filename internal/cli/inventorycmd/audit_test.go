package inventorycmd_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// auditRecords verifies the audit chain in dir (with its checkpoint key)
// and returns the records with the given action.
func auditRecords(t *testing.T, dir, action string) []*audit.Record {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pub, err := audit.LoadPublicKey(filepath.Join(dir, audit.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, pub)
	if err != nil || !rep.OK || rep.Unanchored != 0 {
		t.Fatalf("audit chain: %+v %v", rep, err)
	}
	var out []*audit.Record
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == action {
			out = append(out, audit.FromStore(r))
		}
	}
	return out
}

// checkRecord checks that recs holds one record by the command line's
// operating-system user, with that target and a detail holding every
// string of detail.
func checkRecord(t *testing.T, recs []*audit.Record, action, target, outcome string, detail ...string) {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("%d %s records, want 1: %+v", len(recs), action, recs)
	}
	r := recs[0]
	if r.User != cliaudit.Actor() || r.Client != cliaudit.Client || r.Target != target || r.Outcome != outcome {
		t.Errorf("%s record = user %q client %q target %q outcome %q; want user %q client %q target %q outcome %q",
			action, r.User, r.Client, r.Target, r.Outcome, cliaudit.Actor(), cliaudit.Client, target, outcome)
	}
	for _, d := range detail {
		if !strings.Contains(r.Error, d) {
			t.Errorf("%s record detail %q lacks %q", action, r.Error, d)
		}
	}
}

func TestApproveAudited(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	if out, err := run(t, dir, "inventory", "approve-client", cimd, "--by", "sec-team"); err != nil {
		t.Fatalf("approve-client: %v\n%s", err, out)
	}
	if out, err := run(t, dir, "inventory", "approve-tool", "fs", "read"); err != nil {
		t.Fatalf("approve-tool: %v\n%s", err, out)
	}
	checkRecord(t, auditRecords(t, dir, cliaudit.ActionClientApproved), cliaudit.ActionClientApproved, cimd, audit.OutcomeOK,
		"https://evil.example/cb", `recorded as by "sec-team"`)
	recs := auditRecords(t, dir, cliaudit.ActionToolApproved)
	checkRecord(t, recs, cliaudit.ActionToolApproved, "fs/read", audit.OutcomeOK, "sha256 ")
	if recs[0].Upstream != "fs" || strings.Contains(recs[0].Error, "recorded as by") {
		t.Errorf("tool approval record = %+v", recs[0])
	}
	// A refused act changes nothing and records nothing.
	if _, err := run(t, dir, "inventory", "approve-tool", "fs", "nope"); err == nil {
		t.Fatal("approving an unknown tool succeeded")
	}
	if n := len(auditRecords(t, dir, cliaudit.ActionToolApproved)); n != 1 {
		t.Errorf("%d tool approval records after a refused approval", n)
	}
}

func TestRevokeAndReinstateAudited(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir)
	if out, err := run(t, dir, "revoke", "user", "alice", "--reason", "left the company"); err != nil {
		t.Fatalf("revoke user: %v\n%s", err, out)
	}
	if out, err := run(t, dir, "revoke", "upstream-credential", "drive/alice"); err != nil {
		t.Fatalf("revoke credential: %v\n%s", err, out)
	}
	recs := auditRecords(t, dir, cliaudit.ActionRevocation)
	if len(recs) != 2 {
		t.Fatalf("%d revocation records, want 2", len(recs))
	}
	checkRecord(t, recs[:1], cliaudit.ActionRevocation, "user:alice", audit.OutcomeOK, `reason "left the company"`)
	checkRecord(t, recs[1:], cliaudit.ActionRevocation, "upstream-credential:drive/alice", audit.OutcomeOK)
	if recs[1].Upstream != "drive" {
		t.Errorf("credential revocation upstream %q", recs[1].Upstream)
	}

	out, err := run(t, dir, "reinstate", "user", "alice", "--by", "helpdesk")
	if err != nil || !strings.Contains(out, "reinstated user alice") {
		t.Fatalf("reinstate: %v\n%s", err, out)
	}
	checkRecord(t, auditRecords(t, dir, cliaudit.ActionRevocationLifted), cliaudit.ActionRevocationLifted, "user:alice", audit.OutcomeOK,
		`recorded as by "helpdesk"`)
	if out, _ := run(t, dir, "inventory", "show", "alice"); strings.Contains(out, "REVOKED") {
		t.Errorf("alice still revoked after reinstate:\n%s", out)
	}
	// Lifting what is not revoked fails and records nothing.
	if _, err := run(t, dir, "reinstate", "user", "alice"); err == nil || !strings.Contains(err.Error(), "not revoked") {
		t.Fatalf("second reinstate: %v", err)
	}
	if n := len(auditRecords(t, dir, cliaudit.ActionRevocationLifted)); n != 1 {
		t.Errorf("%d reinstatement records, want 1", n)
	}
}
