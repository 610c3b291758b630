package authcmd_test

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/internal/cli/cliaudit"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// TestAdminActsAudited runs each command that changes users or clients
// and checks its record in the verified audit chain: the action, the
// operating-system user as actor, the target, and no password or secret.
func TestAdminActsAudited(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		stdin  string
		args   []string
		action string
		target string
		detail string
	}{
		{"s3cret-password\n", []string{"user", "add", "alice", "--password-stdin"}, cliaudit.ActionUserAdded, "alice", "password from standard input"},
		{"", []string{"user", "add", "bob", "--generate-password"}, cliaudit.ActionUserAdded, "bob", "generated password"},
		{"", []string{"user", "remove", "bob"}, cliaudit.ActionUserRemoved, "bob", "removed"},
		{"", []string{"client", "add", "robot", "--grant", "client_credentials", "--scope", "mcp:tools"}, cliaudit.ActionClientAdded, "robot", "grants client_credentials"},
		{"", []string{"client", "remove", "robot"}, cliaudit.ActionClientRemoved, "robot", "removed"},
	}
	var outputs string
	for _, s := range steps {
		out, err := run(t, dir, s.stdin, s.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", s.args, err, out)
		}
		outputs += out
	}
	// Refused acts record nothing.
	if _, err := run(t, dir, "", "user", "remove", "nobody"); err == nil {
		t.Fatal("removing an unknown user succeeded")
	}
	if _, err := run(t, dir, "x\n", "user", "add", "carol", "--password-stdin"); err == nil {
		t.Fatal("a too short password was accepted")
	}

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
	// Each remove revokes first: one revocation record more each.
	if err != nil || !rep.OK || rep.Records != len(steps)+2 || rep.Unanchored != 0 {
		t.Fatalf("audit chain: %+v %v (want %d records, all signed)", rep, err, len(steps)+2)
	}
	secrets := []string{"s3cret-password"}
	for _, m := range regexp.MustCompile(`(?:password|client_secret): (\S+)`).FindAllStringSubmatch(outputs, -1) {
		secrets = append(secrets, m[1])
	}
	if len(secrets) != 3 {
		t.Fatalf("generated password and client secret not both printed:\n%s", outputs)
	}
	var i int
	var revoked []string
	for r, err := range st.ReadAudit(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == cliaudit.ActionRevocation {
			// remove revokes first, on the path of `mcpgate revoke`.
			revoked = append(revoked, r.Target)
			if i == 0 || steps[i].action != cliaudit.ActionUserRemoved && steps[i].action != cliaudit.ActionClientRemoved {
				t.Errorf("revocation record %d (%s) does not come right before a removal", r.Seq, r.Target)
			}
			continue
		}
		s := steps[i]
		i++
		if r.Action != s.action || r.Target != s.target || r.User != cliaudit.Actor() || r.Client != cliaudit.Client || r.Outcome != audit.OutcomeOK ||
			!strings.Contains(r.Error, s.detail) {
			t.Errorf("record %d = %+v, want action %s target %s detail %q", r.Seq, r, s.action, s.target, s.detail)
		}
		for _, secret := range secrets {
			if strings.Contains(r.Error, secret) {
				t.Errorf("record %d holds a secret: %q", r.Seq, r.Error)
			}
		}
	}
	if !slices.Equal(revoked, []string{"user:bob", "client:robot"}) {
		t.Errorf("revocation records for %v, want user:bob and client:robot", revoked)
	}
}
