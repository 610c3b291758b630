package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/spf13/cobra"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/cli/authcmd"
	"github.com/mcpgate/mcpgate/internal/cli/inventorycmd"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/oauth/oauthclient"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// offboardingTarget is how long offboarding takes on a machine that is
// not overloaded, from the revocation call to the last of: token refused,
// refresh refused, session and GET stream ended, task cancelled at the
// upstream (the gateway polls the revocation version every 250 ms). A run
// above it is noted with its figures. offboardingLimit is what fails the
// test: the target with a margin for a CI machine whose two cores are
// shared (the steps are measured one after the other by this test, so
// its own delays add up; one run on a machine at load 14 measured 1.06 s).
const (
	offboardingTarget = time.Second
	offboardingLimit  = 3 * time.Second
)

// jobs is the upstream's long-running tool: each call, tagged, runs until
// it is cancelled, and the moment of its cancellation is reported.
type jobs struct {
	mu        sync.Mutex
	cancelled map[string]chan time.Time
}

func (j *jobs) ch(tag string) chan time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cancelled == nil {
		j.cancelled = map[string]chan time.Time{}
	}
	c := j.cancelled[tag]
	if c == nil {
		c = make(chan time.Time, 1)
		j.cancelled[tag] = c
	}
	return c
}

// offboardingUpstream runs long_job as tasks owned by the gateway (not by
// the upstream session), so that a task outlives a gateway restart and
// can be cancelled from a new session.
func offboardingUpstream(j *jobs) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "work", Version: "1"}, &mcp.ServerOptions{
		TaskOwner: func(context.Context, *mcp.ServerSession) string { return "gateway" },
	})
	s.AddTool(&mcp.Tool{Name: "long_job", InputSchema: jsontext.Value(`{"type":"object","properties":{"tag":{"type":"string"}}}`),
		Execution: &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var args struct {
				Tag string `json:"tag"`
			}
			_ = json.Unmarshal(req.Params.Arguments, &args)
			<-ctx.Done()
			j.ch(args.Tag) <- time.Now()
			return nil, ctx.Err()
		})
	s.AddTool(&mcp.Tool{Name: "echo"}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo"}}}, nil
	})
	return s
}

// lastToken is a TokenStore that remembers what the client saved, so that
// the test can replay the access and refresh tokens itself.
type lastToken struct {
	mu  sync.Mutex
	m   map[string]*oauthclient.Token
	tok *oauthclient.Token
}

func (l *lastToken) Load(_ context.Context, key string) (*oauthclient.Token, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[key], nil
}

func (l *lastToken) Save(_ context.Context, key string, tok *oauthclient.Token) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*oauthclient.Token{}
	}
	cp := *tok
	l.m[key], l.tok = &cp, &cp
	return nil
}

func (l *lastToken) Delete(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
	return nil
}

func (l *lastToken) get() *oauthclient.Token {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tok
}

// streamWatch sees the session's standalone GET stream open and end.
type streamWatch struct {
	once        sync.Once
	open, ended chan struct{}
	endedAt     time.Time
}

func newStreamWatch() *streamWatch {
	return &streamWatch{open: make(chan struct{}), ended: make(chan struct{})}
}

func (s *streamWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || r.URL.Path != "/mcp" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	first := false
	s.once.Do(func() { first = true })
	if first {
		resp.Body = &endSignal{ReadCloser: resp.Body, s: s}
		close(s.open)
	}
	return resp, nil
}

type endSignal struct {
	io.ReadCloser
	once sync.Once
	s    *streamWatch
}

func (e *endSignal) Read(p []byte) (int, error) {
	n, err := e.ReadCloser.Read(p)
	if err != nil {
		e.once.Do(func() { e.s.endedAt = time.Now(); close(e.s.ended) })
	}
	return n, err
}

// victim is a user signed in through the CIMD client (real login and
// consent pages), with an MCP session, its GET stream and a running task.
type victim struct {
	user     string
	browser  *browser
	recv     *oauthclient.LoopbackReceiver
	tokens   *lastToken
	stream   *streamWatch
	cs       *mcp.ClientSession
	statuses chan *mcp.TaskStatusNotificationParams
	tag      string // the tag of its running job
	taskID   string
}

func newVictim(t *testing.T, user string) *victim {
	b := newBrowser(user, user+"-password")
	return &victim{user: user, browser: b, recv: newReceiver(t, b), tokens: &lastToken{}, stream: newStreamWatch(),
		statuses: make(chan *mcp.TaskStatusNotificationParams, 16)}
}

// setCIMD publishes the CIMD client's document, naming every victim's
// redirect URI (the authorization server caches it: publish it once).
func setCIMD(w *controlsWorld, vs ...*victim) string {
	id := w.cimd.URL + "/client.json"
	var redirects []string
	for _, v := range vs {
		redirects = append(redirects, v.recv.RedirectURL())
	}
	doc, _ := json.Marshal(map[string]any{
		"client_id": id, "client_name": "Offboarding agent", "redirect_uris": redirects,
		"grant_types":    []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types": []string{meta.ResponseTypeCode}, "token_endpoint_auth_method": meta.AuthMethodNone,
	})
	w.cimdMu.Lock()
	w.cimdDoc = doc
	w.cimdMu.Unlock()
	return id
}

// start signs the victim in, opens its session and waits for its GET
// stream, and starts a job as a task.
func (v *victim) start(ctx context.Context, t *testing.T, w *controlsWorld, j *jobs, tag string) {
	t.Helper()
	tr, err := oauthclient.NewTransport(v.stream, &oauthclient.Config{
		ServerURL: w.base + "/mcp", ClientIDMetadataURL: w.cimd.URL + "/client.json", DisableDynamicRegistration: true,
		RedirectURL: v.recv.RedirectURL(), AuthorizationHandler: v.recv, SafeHTTP: loopbackSafeHTTP(), TokenStore: v.tokens,
	})
	if err != nil {
		t.Fatal(err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "offboarding", Version: "1"}, &mcp.ClientOptions{
		TaskStatusHandler: func(_ context.Context, _ *mcp.ClientSession, p *mcp.TaskStatusNotificationParams) {
			select {
			case v.statuses <- p:
			default:
			}
		},
	})
	v.cs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.base + "/mcp", HTTPClient: &http.Client{Transport: tr}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("%s connects: %v", v.user, err)
	}
	t.Cleanup(func() { v.cs.Close() })
	select {
	case <-v.stream.open:
	case <-ctx.Done():
		t.Fatalf("%s: the GET stream did not open", v.user)
	}
	v.tag = tag
	j.ch(tag) // before the call: the job reports on it
	created, err := v.cs.CallToolAsTask(ctx, &mcp.CallToolParams{Name: "long_job", Arguments: jsontext.Value(`{"tag":"` + tag + `"}`)}, &mcp.TaskMetadata{})
	if err != nil {
		t.Fatalf("%s starts a task: %v", v.user, err)
	}
	v.taskID = created.Task.TaskID
}

// grant returns the grant of the victim's session, as the gateway
// recorded it.
func (v *victim) grant(t *testing.T, w *controlsWorld) string {
	t.Helper()
	for _, s := range w.g.Sessions() {
		if s.ID == v.cs.ID() {
			if s.Grant == "" {
				t.Fatalf("session %s has no grant", s.ID)
			}
			return s.Grant
		}
	}
	t.Fatalf("no session %s", v.cs.ID())
	return ""
}

// refresh redeems a refresh token at the token endpoint; it returns the
// new refresh token, or "" and the error description.
func refresh(t *testing.T, w *controlsWorld, clientID, rt string) (string, string) {
	t.Helper()
	resp, err := http.PostForm(w.base+"/oauth/token", url.Values{"grant_type": {meta.GrantTypeRefreshToken}, "refresh_token": {rt}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", string(body)
	}
	var tr meta.TokenResponse
	if err := json.Unmarshal(body, &tr, json.RejectUnknownMembers(false)); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", body, err)
	}
	return tr.RefreshToken, ""
}

// runCommand runs one of the command trees (mcpgate user|client|revoke|...)
// on the data directory, as the operator would while the gateway runs.
func runCommand(t *testing.T, cmds []*cobra.Command, dataDir string, args ...string) string {
	t.Helper()
	var root *cobra.Command
	for _, c := range cmds {
		if c.Name() == args[0] {
			root = c
		}
	}
	if root == nil {
		t.Fatalf("no command %q", args[0])
	}
	var out bytes.Buffer
	root.SetArgs(args[1:])
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.Execute(); err != nil {
		t.Fatalf("mcpgate %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// waitFor waits for ch (an event), at most until deadline.
func waitFor[T any](t *testing.T, what string, ch <-chan T, deadline time.Duration) (T, bool) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v, true
	case <-timer.C:
		var zero T
		t.Errorf("%s: did not happen within %s", what, deadline)
		return zero, false
	}
}

// checkOffboarded checks, from the moment of the revocation call, that the
// victim's access token is refused, its refresh token mints nothing, its
// session and GET stream ended and its task was cancelled at the upstream
// (and is recorded cancelled), and that all of it took less than
// offboardingLimit. It returns the time the last of them took.
func checkOffboarded(ctx context.Context, t *testing.T, w *controlsWorld, j *jobs, v *victim, clientID, refreshToken string, start time.Time) time.Duration {
	t.Helper()
	tok := v.tokens.get()
	times := map[string]time.Duration{}
	// The gateway caches verified tokens: a revocation made by another
	// process (the command line) reaches it at its next poll of the
	// revocation version (every 250 ms), one made in its process at once.
	for {
		code, _ := rawStatus(t, w.base+"/mcp", tok.AccessToken)
		if code == http.StatusUnauthorized {
			break
		}
		if time.Since(start) > offboardingLimit {
			t.Errorf("the access token is still answered %d %s after the revocation, want 401", code, offboardingLimit)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	times["access token refused (401)"] = time.Since(start)
	if rt, desc := refresh(t, w, clientID, refreshToken); rt != "" {
		t.Error("the refresh token still mints tokens after the revocation")
	} else {
		t.Logf("refresh refused: %s", desc)
	}
	times["refresh token refused"] = time.Since(start)
	if _, ok := waitFor(t, "the GET stream ends", v.stream.ended, 5*time.Second); ok {
		times["session and GET stream ended"] = v.stream.endedAt.Sub(start)
	}
	if at, ok := waitFor(t, "the task is cancelled at the upstream", j.ch(v.tag), 5*time.Second); ok {
		times["task cancelled at the upstream"] = at.Sub(start)
	}
	for _, s := range w.g.Sessions() {
		if s.ID == v.cs.ID() {
			t.Errorf("session %s is still registered", s.ID)
		}
	}
	if code, _ := rawStatus(t, w.base+"/mcp", tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("the access token is answered %d, want 401", code)
	}
	// The gateway records the cancellation once the upstream answered.
	eventually(t, "the task is recorded cancelled", 2*time.Second, func() bool {
		tasks, err := w.g.Tasks(ctx, v.user)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range tasks {
			if rec.ID == v.taskID {
				return rec.Status == string(mcp.TaskStatusCancelled)
			}
		}
		return false
	})
	var last time.Duration
	for what, d := range times {
		t.Logf("%-32s %8.1f ms after the revocation call", what, float64(d.Microseconds())/1000)
		last = max(last, d)
	}
	t.Logf("offboarding complete %.1f ms after the revocation call", float64(last.Microseconds())/1000)
	if last >= offboardingTarget {
		t.Logf("NOTE: offboarding took %s, above the %s target (machine under load?)", last, offboardingTarget)
	}
	if last >= offboardingLimit {
		t.Errorf("offboarding took %s, want less than %s", last, offboardingLimit)
	}
	return last
}

// TestOffboarding is issue 10's offboarding check: for each way of
// removing or revoking, a user signed in through the real pages loses,
// within a second, the access token, the refresh token, the session and
// its open GET stream, and the task running at the upstream; and is then
// refused at sign-in with a clear message.
func TestOffboarding(t *testing.T) {
	cli := func(w *controlsWorld) []*cobra.Command {
		dir := func() string { return w.dataDir }
		return append(authcmd.Commands(dir), inventorycmd.Commands(dir)...)
	}
	for _, tc := range []struct {
		name   string
		revoke func(ctx context.Context, t *testing.T, w *controlsWorld, v, other *victim, clientID string)
		// signInRefused: the victim is refused at sign-in afterwards with
		// the revoked-account message.
		signInRefused bool
		// otherKept: the other victim (alice's second grant, same client)
		// keeps its session and task.
		otherKept bool
	}{
		{"user remove", func(ctx context.Context, t *testing.T, w *controlsWorld, v, _ *victim, _ string) {
			t.Log(runCommand(t, cli(w), w.dataDir, "user", "remove", v.user))
		}, false, false},
		{"user revoke (gateway)", func(ctx context.Context, t *testing.T, w *controlsWorld, v, _ *victim, _ string) {
			if _, err := w.g.Revoker().Revoke(ctx, store.RevokeUser, v.user, "e2e-admin"); err != nil {
				t.Fatalf("revoke: %v", err)
			}
		}, true, false},
		{"user revoke (command line)", func(ctx context.Context, t *testing.T, w *controlsWorld, v, _ *victim, _ string) {
			t.Log(runCommand(t, cli(w), w.dataDir, "revoke", "user", v.user, "--reason", "left the company"))
		}, true, false},
		{"client remove", func(ctx context.Context, t *testing.T, w *controlsWorld, _, _ *victim, clientID string) {
			t.Log(runCommand(t, cli(w), w.dataDir, "client", "remove", clientID))
		}, false, false},
		{"client revoke", func(ctx context.Context, t *testing.T, w *controlsWorld, _, _ *victim, clientID string) {
			t.Log(runCommand(t, cli(w), w.dataDir, "revoke", "client", clientID))
		}, false, false},
		{"grant revoke", func(ctx context.Context, t *testing.T, w *controlsWorld, v, _ *victim, _ string) {
			t.Log(runCommand(t, cli(w), w.dataDir, "revoke", "grant", v.grant(t, w)))
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			j := &jobs{}
			w := newGovernedWorld(t, offboardingUpstream(j), `permit(principal, action, resource);`, nil)
			v, other := newVictim(t, "alice"), newVictim(t, "alice")
			clientID := setCIMD(w, v, other)
			v.start(ctx, t, w, j, "victim")
			other.start(ctx, t, w, j, "other")
			if v.grant(t, w) == other.grant(t, w) {
				t.Fatal("two sign-ins share a grant")
			}
			// Before: the refresh token mints new tokens (it rotates).
			rt, desc := refresh(t, w, clientID, v.tokens.get().RefreshToken)
			if rt == "" {
				t.Fatalf("refresh before the revocation: %s", desc)
			}

			start := time.Now()
			tc.revoke(ctx, t, w, v, other, clientID)
			checkOffboarded(ctx, t, w, j, v, clientID, rt, start)

			if tc.otherKept {
				if _, err := callTool(ctx, other.cs, "echo", `{}`); err != nil {
					t.Errorf("alice's other grant lost its session: %v", err)
				}
				select {
				case <-j.ch(other.tag):
					t.Error("alice's other grant's task was cancelled")
				default:
				}
				// The owner is told, on the session still connected.
				deadline := time.After(5 * time.Second)
				for told := false; !told; {
					select {
					case p := <-other.statuses:
						told = p.TaskID == v.taskID && p.Status == mcp.TaskStatusCancelled
					case <-deadline:
						t.Error("the owner's connected session was not told of the cancelled task (notifications/tasks/status)")
						told = true
					}
				}
			} else if _, ok := waitFor(t, "the other session's GET stream ends", other.stream.ended, 5*time.Second); ok {
				if _, ok := waitFor(t, "the other task is cancelled", j.ch(other.tag), 5*time.Second); !ok {
					t.Error("the other task of the revoked identity runs on")
				}
			}

			if tc.signInRefused {
				b := newBrowser(v.user, v.user+"-password")
				err := signInOnly(ctx, b, w, clientID, v.recv.RedirectURL())
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), "this account has been revoked by an administrator") {
					t.Errorf("sign-in after the revocation: %v, want it refused as revoked", err)
				}
			}
			// The gateway audits what it applied (the audit log writes
			// in the background).
			eventually(t, "the gateway audits the revocation it applied", 3*time.Second, func() bool {
				return hasRecord(auditRecords(t, w.dataDir), map[string]string{"action": "revocation"})
			})
		})
	}
}

// signInOnly goes through the sign-in page of an authorization request of
// the CIMD client and returns the page's refusal, if any.
func signInOnly(ctx context.Context, b *browser, w *controlsWorld, clientID, redirect string) error {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "resource": {w.base + "/mcp"}, "state": {"s"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/oauth/authorize?"+q.Encode(), nil)
	resp, page, err := b.do(req)
	if err != nil {
		return err
	}
	if !strings.Contains(page, `name="password"`) {
		return errors.New("no sign-in page")
	}
	resp, page, err = b.postForm(ctx, resp, page, url.Values{"username": {b.user}, "password": {b.password}})
	if err != nil {
		return err
	}
	if strings.Contains(page, "Allow access?") {
		return nil // the consent page: not refused
	}
	return errors.New(tagRe.ReplaceAllString(page, " "))
}

// eventually checks cond on every tick of a short ticker until it holds,
// at most for deadline (for state that is written after the event the
// test waited for).
func eventually(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-timer.C:
			t.Errorf("%s: not within %s", what, deadline)
			return
		}
	}
}

// listenOn listens again on the address of base (the gateway's public URL).
func listenOn(t *testing.T, base string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestOffboardingWhileStopped: a revocation written by the command line
// while the gateway is stopped is applied and audited at the next start,
// before the gateway serves: the task is cancelled at the upstream, the
// tokens are refused, and the revocation is marked applied.
func TestOffboardingWhileStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j := &jobs{}
	w := newGovernedWorld(t, offboardingUpstream(j), `permit(principal, action, resource);`, nil)
	v := newVictim(t, "bob")
	clientID := setCIMD(w, v)
	v.start(ctx, t, w, j, "stopped")
	tok := v.tokens.get()

	// The gateway stops; the upstream keeps running the task.
	w.srv.Close()
	if err := w.app.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-j.ch(v.tag):
		t.Fatal("the task ended with the gateway: the test cannot tell a revocation from a shutdown")
	default:
	}
	dir := func() string { return w.dataDir }
	t.Log(runCommand(t, inventorycmd.Commands(dir), w.dataDir, "revoke", "user", "bob", "--reason", "offboarded while the gateway was down"))

	// The next start applies it before serving.
	cfg := w.cfg
	a, err := app.New(ctx, cfg, &app.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	start := time.Now()
	if err := a.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Start has returned and nothing is served yet: the task was
	// cancelled at the upstream already.
	select {
	case at := <-j.ch(v.tag):
		t.Logf("task cancelled at the upstream %.1f ms after Start began", float64(at.Sub(start).Microseconds())/1000)
	default:
		t.Error("Start returned before the task of the revoked user was cancelled at the upstream")
	}
	tasks, err := a.Gateway.Tasks(ctx, "bob")
	if err != nil || len(tasks) != 1 || tasks[0].Status != string(mcp.TaskStatusCancelled) {
		t.Errorf("bob's tasks after the start: %+v %v", tasks, err)
	}
	db, err := sqlite.Open(ctx, datadir.Database(w.dataDir))
	if err != nil {
		t.Fatal(err)
	}
	revs, err := db.ListRevocations(ctx)
	db.Close()
	if err != nil || len(revs) != 1 || revs[0].AppliedAt.IsZero() {
		t.Errorf("revocations after the start: %+v %v, want bob's marked applied", revs, err)
	} else {
		t.Logf("applied note: %s", revs[0].AppliedNote)
	}
	eventually(t, "the start audits the revocation it applied", 3*time.Second, func() bool {
		return hasRecord(auditRecords(t, w.dataDir), map[string]string{"action": "revocation", "target": "bob"})
	})

	// Served now: the tokens are refused.
	srv := &http.Server{Handler: a.Gateway.Handler()}
	ln := listenOn(t, w.base)
	go srv.Serve(ln)
	defer srv.Close()
	if code, _ := rawStatus(t, w.base+"/mcp", tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("bob's access token is answered %d after the start, want 401", code)
	}
	if rt, _ := refresh(t, w, clientID, tok.RefreshToken); rt != "" {
		t.Error("bob's refresh token mints tokens after the start")
	}
	// Applied once: a second start applies nothing again.
	a.Close()
	a2, err := app.New(ctx, cfg, &app.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	before := len(auditRecords(t, w.dataDir))
	if err := a2.Gateway.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range auditRecords(t, w.dataDir)[before:] {
		if r["action"] == "revocation" {
			n++
		}
	}
	if n != 0 {
		t.Errorf("a second start applied the revocation again (%d records)", n)
	}
}
