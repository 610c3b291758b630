package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/cli/auditcmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/oauth/safehttp"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// controlPolicies deny a tool to everyone, hide another from bob, keep the
// machine-to-machine client to two tools, restrict an argument to a folder
// and require approval for deployments.
const controlPolicies = `
@id("base")
permit(principal, action, resource);

@id("no-wipe")
@reason("wiping is disabled")
forbid(principal, action in Action::"tools", resource == Tool::"files/wipe");

@id("bob-no-deploy")
forbid(principal == User::"bob", action in Action::"tools", resource == Tool::"files/deploy");

@id("robot-scope")
forbid(principal is Client, action in Action::"tools", resource in Upstream::"files")
unless { resource == Tool::"files/report" || resource == Tool::"files/long_job" };

@id("docs-only")
@reason("files may only be read under /srv/docs")
forbid(principal, action == Action::"tools/call", resource == Tool::"files/read_file")
when { context has arguments && !(context.arguments has path && context.arguments.path like "/srv/docs/*" && !context.path_traversal) };

@id("approve-deploy")
@approval("required")
permit(principal, action == Action::"tools/call", resource == Tool::"files/deploy");
`

// controlsUpstream is the MCP server behind the gateway.
func controlsUpstream() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1"}, nil)
	text := func(t string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: t}}}
	}
	s.AddTool(&mcp.Tool{Name: "read_file", InputSchema: jsontext.Value(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("contents of " + string(req.Params.Arguments)), nil
		})
	s.AddTool(&mcp.Tool{Name: "wipe"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text("wiped"), nil
	})
	s.AddTool(&mcp.Tool{Name: "deploy", InputSchema: jsontext.Value(`{"type":"object","properties":{"env":{"type":"string"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("deployed " + string(req.Params.Arguments)), nil
		})
	s.AddTool(&mcp.Tool{Name: "report", Description: "daily report"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text("report"), nil
	})
	s.AddTool(&mcp.Tool{Name: "long_job", Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
	return s
}

// controlsWorld is a gateway with its built-in authorization server on
// SQLite, in front of controlsUpstream, with the policies above.
type controlsWorld struct {
	app     *app.App // the gateway and what internal/app built for it
	cfg     *config.Config
	g       *gateway.Gateway
	srv     *http.Server
	base    string
	dataDir string
	up      *mcp.Server
	cimd    *httptest.Server
	cimdDoc []byte
	cimdMu  sync.Mutex
}

const robotSecret = "robot-secret-0123456789"

func newControlsWorld(t *testing.T) *controlsWorld {
	return newGovernedWorld(t, controlsUpstream(), controlPolicies, nil)
}

// newGovernedWorld starts a gateway with its built-in authorization server on
// SQLite in front of up, with policies; adjust, if set, changes the
// configuration first.
func newGovernedWorld(t *testing.T, up *mcp.Server, policies string, adjust func(*config.Config)) *controlsWorld {
	t.Helper()
	ctx := context.Background()
	w := &controlsWorld{dataDir: t.TempDir(), up: up}
	upSrv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return w.up }, nil))
	t.Cleanup(upSrv.Close)

	w.cimd = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.cimdMu.Lock()
		doc := w.cimdDoc
		w.cimdMu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(doc)
	}))
	t.Cleanup(w.cimd.Close)
	roots := x509.NewCertPool()
	roots.AddCert(w.cimd.Certificate())

	// Users and the machine-to-machine client, in the gateway's database.
	db, err := sqlite.Open(ctx, datadir.Database(w.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		hash, err := authserver.HashPassword(u+"-password", &cheapArgon2)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CreateUser(ctx, &store.User{Username: u, PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateClient(ctx, &store.Client{ID: "robot", Kind: store.ClientPreRegistered, Name: "Reporting robot",
		SecretHash: store.Digest(robotSecret), GrantTypes: []string{meta.GrantTypeClientCredentials},
		TokenEndpointAuthMethod: meta.AuthMethodClientSecretBasic, Scope: gateway.ScopeTools, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "controls.cedar"), []byte(policies), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.base = "http://" + ln.Addr().String()
	cfg := &config.Config{
		Listen: ln.Addr().String(), Auth: config.AuthOAuth, PublicURL: w.base, DataDir: w.dataDir,
		Upstreams: []config.Upstream{{Name: "files", URL: upSrv.URL, Prefix: ptr("")}},
		Policy:    &config.Policy{Paths: []string{policyDir}},
		Approvals: &config.Approvals{Approvers: []string{"carol"}},
		Inventory: &config.Inventory{BlockChangedTools: true},
	}
	if adjust != nil {
		adjust(cfg)
	}
	w.cfg = cfg
	w.app, err = app.New(ctx, cfg, &app.Options{
		Logger: discardLogger(),
		AuthServer: func(o *authserver.Options) {
			// The test's metadata documents are served on 127.0.0.1.
			o.MetadataDocuments.HTTPClient = safehttp.NewClient(&safehttp.Options{AllowLoopback: true, NoRedirects: true,
				TLSClientConfig: &tls.Config{RootCAs: roots}, Timeout: 5 * time.Second})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.g = w.app.Gateway
	if err := w.g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.srv = &http.Server{Handler: w.g.Handler()}
	go w.srv.Serve(ln)
	t.Cleanup(func() { w.srv.Close(); w.app.Close() })
	return w
}

func ptr[T any](v T) *T { return &v }

// userSession signs user in through the CIMD client (the real login and
// consent pages) and opens an MCP session.
func (w *controlsWorld) userSession(ctx context.Context, t *testing.T, user string, recv *oauthclient.LoopbackReceiver) *mcp.ClientSession {
	t.Helper()
	return w.connect(ctx, t, w.userTransport(t, recv))
}

// userTransport is an HTTP transport that signs in through the CIMD client
// with recv's browser and sends the user's bearer token.
func (w *controlsWorld) userTransport(t *testing.T, recv *oauthclient.LoopbackReceiver) http.RoundTripper {
	t.Helper()
	return w.userTransportOver(t, recv, nil)
}

// userTransportOver is userTransport over base (nil: the default).
func (w *controlsWorld) userTransportOver(t *testing.T, recv *oauthclient.LoopbackReceiver, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	tr, err := oauthclient.NewTransport(base, &oauthclient.Config{
		ServerURL:                  w.base + "/mcp",
		ClientIDMetadataURL:        w.cimd.URL + "/client.json",
		DisableDynamicRegistration: true,
		RedirectURL:                recv.RedirectURL(),
		AuthorizationHandler:       recv,
		SafeHTTP:                   loopbackSafeHTTP(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (w *controlsWorld) connect(ctx context.Context, t *testing.T, tr http.RoundTripper) *mcp.ClientSession {
	t.Helper()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: w.base + "/mcp", HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(ctx context.Context, t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

func callTool(ctx context.Context, cs *mcp.ClientSession, name, args string) (string, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: jsontext.Value(args)})
	if err != nil {
		return "", err
	}
	if res.IsError || len(res.Content) == 0 {
		return "", errors.New("tool error")
	}
	return res.Content[0].(*mcp.TextContent).Text, nil
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// approveAs decides an approval on the approval page as an approver, with
// HTTP Basic authentication and the page's CSRF token.
func (w *controlsWorld) approveAs(t *testing.T, user, approvalURL string, approve bool) int {
	t.Helper()
	u, err := url.Parse(approvalURL)
	if err != nil {
		t.Fatal(err)
	}
	page := w.base + u.Path // the approval URL names the gateway's public URL
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, page, nil)
	req.SetBasicAuth(user, user+"-password")
	resp, body, err := doRead(hc, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Logf("approval page for %s: HTTP %d: %.300s", user, resp.StatusCode, body)
		return resp.StatusCode
	}
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the approval page: %.500s", body)
	}
	decision := "deny"
	if approve {
		decision = "approve"
	}
	form := url.Values{"decision": {decision}, "csrf_token": {m[1]}, "note": {"e2e"}}
	req, _ = http.NewRequest(http.MethodPost, page, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, user+"-password")
	resp, body, err = doRead(hc, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Logf("decision page: %d %.300s", resp.StatusCode, body)
	}
	return resp.StatusCode
}

func doRead(hc *http.Client, req *http.Request) (*http.Response, string, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp, b.String(), err
}

// TestAgentControls is issue 6's end-to-end check: a real gateway with its
// built-in authorization server, SQLite and real signatures; two users and
// an approver signing in through a CIMD client, and a machine-to-machine
// client.
func TestAgentControls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	w := newControlsWorld(t)

	recvA := newReceiver(t, newBrowser("alice", "alice-password"))
	recvB := newReceiver(t, newBrowser("bob", "bob-password"))
	w.cimdDoc, _ = json.Marshal(map[string]any{
		"client_id":                  w.cimd.URL + "/client.json",
		"client_name":                "E2E Desktop Agent",
		"redirect_uris":              []string{recvA.RedirectURL(), recvB.RedirectURL()},
		"grant_types":                []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types":             []string{meta.ResponseTypeCode},
		"token_endpoint_auth_method": meta.AuthMethodNone,
	})
	alice := w.userSession(ctx, t, "alice", recvA)
	bob := w.userSession(ctx, t, "bob", recvB)
	robotTr, err := oauthclient.NewTransport(nil, &oauthclient.Config{
		ServerURL: w.base + "/mcp", Flow: oauthclient.FlowClientCredentials,
		Client:   &oauthclient.ClientAuth{ClientID: "robot", ClientSecret: robotSecret},
		SafeHTTP: loopbackSafeHTTP(),
	})
	if err != nil {
		t.Fatal(err)
	}
	robot := w.connect(ctx, t, robotTr)

	t.Run("tools/list is filtered per identity", func(t *testing.T) {
		for _, c := range []struct {
			who  string
			cs   *mcp.ClientSession
			want []string
		}{
			{"alice", alice, []string{"deploy", "long_job", "read_file", "report"}},
			{"bob", bob, []string{"long_job", "read_file", "report"}},
			{"robot", robot, []string{"long_job", "report"}},
		} {
			if got := toolNames(ctx, t, c.cs); !slices.Equal(got, c.want) {
				t.Errorf("%s sees %v, want %v", c.who, got, c.want)
			}
		}
	})

	t.Run("argument outside the folder is refused naming the policy", func(t *testing.T) {
		if _, err := callTool(ctx, alice, "read_file", `{"path":"/srv/docs/guide.md"}`); err != nil {
			t.Errorf("allowed read: %v", err)
		}
		for _, p := range []string{"/etc/passwd", "/srv/docs/../../etc/shadow"} {
			_, err := callTool(ctx, alice, "read_file", `{"path":"`+p+`"}`)
			if jsonrpc.ErrorCode(err) != gateway.CodePolicyDenied || !strings.Contains(err.Error(), "docs-only") {
				t.Errorf("read %s: %v, want a denial naming docs-only", p, err)
			}
		}
		if _, err := callTool(ctx, bob, "wipe", `{}`); jsonrpc.ErrorCode(err) != gateway.CodePolicyDenied || !strings.Contains(err.Error(), "no-wipe") {
			t.Errorf("wipe: %v", err)
		}
	})

	t.Run("approval end to end; replayed and altered approvals fail", func(t *testing.T) {
		_, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`)
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != mcp.CodeURLElicitationRequired {
			t.Fatalf("deploy before approval: %v", err)
		}
		var data mcp.URLElicitationRequiredErrorData
		if err := json.Unmarshal(we.Data, &data); err != nil || len(data.Elicitations) != 1 {
			t.Fatalf("elicitation data %s: %v", we.Data, err)
		}
		approvalURL := data.Elicitations[0].URL
		t.Logf("approval URL %s", approvalURL)
		// Alice cannot approve her own request; bob is no approver.
		if code := w.approveAs(t, "alice", approvalURL, true); code == http.StatusOK || code == http.StatusSeeOther {
			t.Errorf("alice approved her own request (HTTP %d)", code)
		}
		if code := w.approveAs(t, "bob", approvalURL, true); code != http.StatusUnauthorized {
			t.Errorf("bob on the approval page: HTTP %d, want 401", code)
		}
		if code := w.approveAs(t, "carol", approvalURL, true); code != http.StatusOK && code != http.StatusSeeOther {
			t.Fatalf("carol's approval: HTTP %d", code)
		}
		if _, err := callTool(ctx, alice, "deploy", `{"env":"staging"}`); jsonrpc.ErrorCode(err) != mcp.CodeURLElicitationRequired {
			t.Errorf("altered arguments: %v, want a new approval to be required", err)
		}
		if got, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`); err != nil || !strings.Contains(got, "prod") {
			t.Errorf("approved deploy: %q %v", got, err)
		}
		if _, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`); jsonrpc.ErrorCode(err) != mcp.CodeURLElicitationRequired {
			t.Errorf("replayed approval: %v, want a new approval to be required", err)
		}
	})

	t.Run("one user cannot see or cancel another's task", func(t *testing.T) {
		created, err := alice.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "long_job"}, &mcp.TaskMetadata{})
		if err != nil {
			t.Fatal(err)
		}
		id := created.Task.TaskID
		_, errUnknown := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: "no-such-task"})
		if _, err := bob.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err == nil || err.Error() != strings.Replace(errUnknown.Error(), "no-such-task", id, 1) {
			t.Errorf("bob get: %v (unknown task: %v)", err, errUnknown)
		}
		if _, err := bob.CancelTask(ctx, &mcp.CancelTaskParams{TaskID: id}); err == nil {
			t.Error("bob cancelled alice's task")
		}
		if l, err := bob.ListTasks(ctx, nil); err != nil || len(l.Tasks) != 0 {
			t.Errorf("bob lists %+v %v", l, err)
		}
		if got, err := alice.GetTask(ctx, &mcp.GetTaskParams{TaskID: id}); err != nil || got.Status != mcp.TaskStatusWorking {
			t.Errorf("alice get: %+v %v", got, err)
		}
	})

	t.Run("revoking a client cancels its task and closes its session within a second", func(t *testing.T) {
		created, err := robot.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "long_job"}, &mcp.TaskMetadata{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := w.g.Revoker().Revoke(ctx, "client", "robot", "e2e-admin"); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		elapsed := time.Since(start)
		if elapsed > time.Second {
			t.Errorf("revocation took %s", elapsed)
		}
		for _, s := range w.g.Sessions() {
			if s.ClientID == "robot" {
				t.Errorf("robot's session %s is still open", s.ID)
			}
		}
		tasks, err := w.g.Tasks(ctx, "client:robot")
		if err != nil || len(tasks) != 1 || tasks[0].ID != created.Task.TaskID || tasks[0].Status != string(mcp.TaskStatusCancelled) {
			t.Errorf("robot's tasks after revocation: %+v %v", tasks, err)
		}
		// The robot gets no new token and no new session.
		if _, err := callTool(ctx, robot, "report", `{}`); err == nil {
			t.Error("the revoked robot can still call tools")
		}
	})

	t.Run("a changed upstream tool definition is flagged", func(t *testing.T) {
		w.up.AddTool(&mcp.Tool{Name: "report", Description: "daily report, now with everyone's salaries"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "changed"}}}, nil
		})
		deadline := time.Now().Add(10 * time.Second)
		for {
			toolNames(ctx, t, alice) // the list_changed made the gateway list again
			g, err := w.g.Inventory().Graph(ctx)
			if err != nil {
				t.Fatal(err)
			}
			flagged := false
			for _, u := range g.Upstreams {
				for _, tool := range u.Tools {
					if u.Name == "files" && tool.Name == "report" && tool.Flagged {
						flagged = true
					}
				}
			}
			if flagged {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the changed definition of report was not flagged")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// With block_changed_tools, the changed tool is refused until approved,
		// and its new (possibly poisoned) description never reaches a client:
		// the approved definition is listed instead.
		if _, err := callTool(ctx, alice, "report", `{}`); err == nil || !strings.Contains(err.Error(), "changed since it was approved") {
			t.Errorf("changed tool: %v, want it blocked", err)
		}
		for tool, err := range alice.Tools(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if tool.Name == "report" && tool.Description != "daily report" {
				t.Errorf("the blocked tool is listed with description %q, want the approved %q", tool.Description, "daily report")
			}
		}
	})

	t.Run("audit verify passes, then fails naming an edited or deleted record", func(t *testing.T) {
		w.srv.Close()
		w.app.Close() // flushes the log and writes a final checkpoint
		out, err := runAuditVerify(w.dataDir)
		if err != nil {
			t.Fatalf("audit verify of the untouched log: %v\n%s", err, out)
		}
		dbPath := datadir.Database(w.dataDir)
		// Every kind of action is in the log.
		db, err := sqlite.Open(ctx, dbPath)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for r, err := range db.ReadAudit(ctx, 1) {
			if err != nil {
				t.Fatal(err)
			}
			kinds[r.Action+"/"+r.Outcome] = true
			kinds[r.Action] = true
		}
		db.Close()
		for _, want := range []string{"config.loaded", "token.issued", "token.refused", "tools/call/ok", "tools/call/denied", "tools/call/approval_requested",
			"task.created", "task.status/cancelled", "revocation", "tool.changed", "approval.decided/approved", "tools/call/blocked"} {
			if !kinds[want] {
				t.Errorf("no %s record in the audit log (have %v)", want, slices.Sorted(maps.Keys(kinds)))
			}
		}
		// Each tampering is done on its own snapshot of the log, never on
		// the gateway's own files: Gateway.Close does not wait for every
		// goroutine that was using the database (a connection busy at
		// Close is closed only when its query ends), and overwriting the
		// file or deleting its -wal and -shm under an open connection
		// corrupts what SQLite sees ("disk I/O error").
		edited := snapshotDataDir(t, w.dataDir)
		tamper(t, filepath.Join(edited, datadir.DatabaseFile), `UPDATE audit_records SET target = 'innocent' WHERE seq = 5`)
		out, err = runAuditVerify(edited)
		if err == nil || !strings.Contains(out, "record 5 edited") {
			t.Errorf("after editing record 5: %v\n%s", err, out)
		}
		deleted := snapshotDataDir(t, w.dataDir)
		tamper(t, filepath.Join(deleted, datadir.DatabaseFile), `DELETE FROM audit_records WHERE seq = 7`)
		out, err = runAuditVerify(deleted)
		if err == nil || !strings.Contains(out, "record 7 deleted") {
			t.Errorf("after deleting record 7: %v\n%s", err, out)
		}
	})
}

// runAuditVerify runs `mcpgate audit verify` on a data directory.
func runAuditVerify(dataDir string) (string, error) {
	var out bytes.Buffer
	cmds := auditcmd.Commands(func() string { return dataDir })
	root := cmds[0]
	root.SetArgs([]string{"verify"})
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// tamper changes the database behind the gateway's back, the way an
// attacker with write access would (dropping the append-only triggers).
func tamper(t *testing.T, path, stmt string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{`DROP TRIGGER IF EXISTS audit_records_no_update`, `DROP TRIGGER IF EXISTS audit_records_no_delete`, stmt} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// snapshotDataDir returns a new data directory holding a consistent copy
// of dataDir's database, made by SQLite itself (VACUUM INTO reads in one
// transaction, committed WAL frames included, so a connection still open on
// the original does not matter), and of its audit signing key.
func snapshotDataDir(t *testing.T, dataDir string) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, datadir.DatabaseFile)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, filepath.Join(dir, datadir.DatabaseFile)); err != nil {
		t.Fatalf("VACUUM INTO: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(dataDir, audit.DefaultKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, audit.DefaultKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
