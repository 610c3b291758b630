package authcmd_test

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/internal/cli/authcmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

func run(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "mcpgate", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(authcmd.Commands(func() string { return dir })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func openStore(t *testing.T, dir string) store.Store {
	st, err := sqlite.Open(context.Background(), datadir.Database(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	if out, err := run(t, dir, "s3cret-password\n", "user", "add", "alice", "--password-stdin"); err != nil || !strings.Contains(out, "added user alice") {
		t.Fatalf("add: %q %v", out, err)
	}
	out, err := run(t, dir, "", "user", "add", "bob", "--generate-password")
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("add generated: %q %v", out, err)
	}
	for _, tt := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"x\n", []string{"user", "add", "carol", "--password-stdin"}, "at least 8"},
		{"", []string{"user", "add", "carol"}, "--password-stdin"},
		{"another-password\n", []string{"user", "add", "alice", "--password-stdin"}, "already exists"},
		{"", []string{"user", "add", "bad name", "--generate-password"}, "invalid character"},
		{"", []string{"user", "remove", "nobody"}, `no user "nobody"`},
		{"", []string{"user", "add", "dave", "--generate-password", "--email", "Dave <d@example.com>"}, "not a plain email address"},
		{"", []string{"user", "add", "dave", "--generate-password", "--group", " padded"}, "surrounding spaces"},
		{"", []string{"user", "add", "dave", "--generate-password", "--group", strings.Repeat("g", 257)}, "at most 256"},
	} {
		if _, err := run(t, dir, tt.stdin, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
	if out, err := run(t, dir, "", "user", "add", "erin", "--generate-password", "--group", "eng", "--group", "contractors", "--group", "eng", "--role", "admin", "--email", "erin@example.com"); err != nil || !strings.Contains(out, "added user erin") {
		t.Fatalf("add with attributes: %q %v", out, err)
	}
	out, _ = run(t, dir, "", "user", "list")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "bob") || strings.Contains(out, "argon2") || !strings.Contains(out, "contractors,eng") || !strings.Contains(out, "erin@example.com") {
		t.Fatalf("list: %q", out)
	}
	st := openStore(t, dir)
	if e, err := st.GetUser(context.Background(), "erin"); err != nil || !slices.Equal(e.Groups, []string{"contractors", "eng"}) || !slices.Equal(e.Roles, []string{"admin"}) || e.Email != "erin@example.com" {
		t.Fatalf("stored erin = %+v, %v", e, err)
	}
	u, err := st.GetUser(context.Background(), "bob")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("stored bob = %+v, %v", u, err)
	}
	if ok, _ := authserver.VerifyPassword(m[1], u.PasswordHash); !ok {
		t.Fatal("generated password does not verify")
	}
	a, _ := st.GetUser(context.Background(), "alice")
	if ok, _ := authserver.VerifyPassword("s3cret-password", a.PasswordHash); !ok {
		t.Fatal("stdin password does not verify")
	}
	if out, err := run(t, dir, "", "user", "remove", "alice"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %q %v", out, err)
	}
	out, _ = run(t, dir, "", "user", "list")
	if strings.Contains(out, "alice") {
		t.Fatalf("alice still listed: %q", out)
	}
}

func TestClientCommands(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, dir, "", "client", "add", "web", "--name", "Web App", "--redirect-uri", "https://app.example.test/cb", "--redirect-uri", "http://127.0.0.1/cb")
	m := regexp.MustCompile(`client_secret: (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("add: %q %v", out, err)
	}
	if out, err := run(t, dir, "", "client", "add", "cli", "--auth-method", "none", "--redirect-uri", "http://127.0.0.1/cb"); err != nil || strings.Contains(out, "client_secret") {
		t.Fatalf("public add: %q %v", out, err)
	}
	if _, err := run(t, dir, "", "client", "add", "svc", "--grant", "client_credentials", "--auth-method", "client_secret_post", "--scope", "mcp:read"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"client", "add", "x", "--redirect-uri", "http://evil.example.test/cb"}, "https"},
		{[]string{"client", "add", "x"}, "needs at least one --redirect-uri"},
		{[]string{"client", "add", "x", "--auth-method", "none", "--grant", "client_credentials"}, "confidential"},
		{[]string{"client", "add", "x", "--auth-method", "private_key_jwt", "--grant", "client_credentials"}, "--jwks-file"},
		{[]string{"client", "add", "https://x.example.test/c.json", "--redirect-uri", "https://x.example.test/cb"}, "https URL"},
		{[]string{"client", "add", "web", "--redirect-uri", "https://a.example.test/cb"}, "already exists"},
		{[]string{"client", "add", "x", "--grant", "password", "--redirect-uri", "https://a.example.test/cb"}, "unsupported --grant"},
		{[]string{"client", "remove", "nobody"}, `no client "nobody"`},
	} {
		if _, err := run(t, dir, "", tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.want)
		}
	}
	out, _ = run(t, dir, "", "client", "list")
	for _, want := range []string{"web", "client_secret_basic", "Web App", "cli", "none", "svc", "client_credentials"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	st := openStore(t, dir)
	c, err := st.GetClient(context.Background(), "web")
	if err != nil || c.SecretHash != store.Digest(m[1]) || len(c.RedirectURIs) != 2 || c.Kind != store.ClientPreRegistered {
		t.Fatalf("stored web = %+v, %v", c, err)
	}
	if strings.Contains(c.SecretHash, m[1]) {
		t.Fatal("secret stored in clear")
	}
	if _, err := run(t, dir, "", "client", "remove", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetClient(context.Background(), "web"); err == nil {
		t.Fatal("web not removed")
	}
}
