package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-json-experiment/json"

	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/datadir"
	"github.com/mcpgate/mcpgate/oauth/authserver"
	"github.com/mcpgate/mcpgate/oauth/meta"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// chromiumPath returns Debian's chromium ($CHROMIUM overrides), or skips
// the test when there is none, except in CI (env CI set), where a
// missing browser fails it: .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: install Debian's chromium (apt-get install --no-install-recommends chromium) or set $CHROMIUM to run the console's browser tests"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: the browser tests must run)")
	}
	t.Skip(msg)
	return ""
}

// screenshotDir returns where the browser tests save their screenshots:
// $CONSOLE_SCREENSHOTS, or results/console-screens at the repository's
// root (ignored by git).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "results", "console-screens")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// headless starts one headless chromium for the test with the flags of
// docs/console.md and a fresh profile, and returns its context.
func headless(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	// The first context starts the browser; each user gets its own
	// browser context (separate cookies) from it.
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	return bctx
}

// consoleUser is one user's browser context on the console.
type consoleUser struct {
	t    *testing.T
	ctx  context.Context
	name string
	base string
	dir  string
}

func newConsoleUser(t *testing.T, browser context.Context, base, name, dir string) *consoleUser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run opens the tab and binds it to ctx (a shorter-lived
	// context would close it when done).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab for %s: %v", name, err)
	}
	return &consoleUser{t: t, ctx: ctx, name: name, base: base, dir: dir}
}

// run runs actions, failing the test with what with the error.
func (u *consoleUser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.fail(what, err)
	}
}

// value runs an action that returns a value.
func value[T any](u *consoleUser, what string, a chromedp.Action[T]) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		u.fail(what, err)
	}
	return v
}

// fail fails the test with what went wrong and the page's text.
func (u *consoleUser) fail(what string, err error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	u.t.Fatalf("%s (%s at %s): %v\npage text: %.1500s", what, u.name, loc, err, body)
}

// signIn opens the console, which sends the browser to the
// authorization server's sign-in form; it signs in with the password and
// lands on the overview.
func (u *consoleUser) signIn() {
	u.t.Helper()
	u.run("sign-in",
		chromedp.Navigate(u.base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), u.name),
		chromedp.SendKeys(chromedp.CSS(`#password`), u.name+"-password"),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`)),
	)
	who := value(u, "reading who is signed in", chromedp.Text(chromedp.CSS(`#who`)))
	if !strings.HasPrefix(who, u.name+" (") {
		u.t.Fatalf("signed in as %q, want %s", who, u.name)
	}
}

// open goes to a page of the console (the part after #) and waits for it.
func (u *consoleUser) open(hash, page string) {
	u.t.Helper()
	u.run("opening #"+hash,
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.loaded = "";
			if (location.hash === "#" + `+jsString(hash)+`) window.dispatchEvent(new HashChangeEvent("hashchange"));
			else location.hash = `+jsString(hash)+`;
			true`),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="`+page+`"]`)),
	)
}

// waitFor polls a JavaScript condition until it holds.
func (u *consoleUser) waitFor(what, cond string) {
	u.t.Helper()
	u.run("waiting for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(20*time.Second)))
}

// shot saves a screenshot of the whole page as NAME.png.
func (u *consoleUser) shot(name string) {
	u.t.Helper()
	png := value(u, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(u.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("screenshot %s (%d bytes)", path, len(png))
}

// flashText returns the console's status line.
func (u *consoleUser) flashText() string {
	u.t.Helper()
	return value(u, "reading the status line", chromedp.Evaluate[string](`document.getElementById("flash").textContent`))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestConsoleInABrowser is issue 15's browser test of the web console, in
// headless Chromium: a viewer is refused an administrator action; an
// approver approves a pending call and the waiting client continues; an
// administrator finds a user's path in the inventory, revokes the user
// and sees the session end, searches the audit log and verifies the
// chain, and runs a policy dry run. Each page is saved as a screenshot.
func TestConsoleInABrowser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	browser := headless(t, ctx)
	dir := screenshotDir(t)

	w := newGovernedWorld(t, controlsUpstream(), controlPolicies, func(c *config.Config) {
		c.Console = &config.Console{Administrators: []string{"bob"}, Viewers: []string{"vera"}}
		addUser(t, c.DataDir, "vera")
	})
	recvA := newReceiver(t, newBrowser("alice", "alice-password"))
	w.cimdDoc, _ = json.Marshal(map[string]any{
		"client_id": w.cimd.URL + "/client.json", "client_name": "E2E Desktop Agent",
		"redirect_uris": []string{recvA.RedirectURL()}, "grant_types": []string{meta.GrantTypeAuthorizationCode, meta.GrantTypeRefreshToken},
		"response_types": []string{meta.ResponseTypeCode}, "token_endpoint_auth_method": meta.AuthMethodNone,
	})
	alice := w.userSession(ctx, t, "alice", recvA)
	if got, err := callTool(ctx, alice, "read_file", `{"path":"/srv/docs/a.txt"}`); err != nil {
		t.Fatalf("alice reads: %q %v", got, err)
	}

	t.Run("a viewer is refused an administrator action", func(t *testing.T) {
		vera := newConsoleUser(t, browser, w.base, "vera", dir)
		vera.signIn()
		vera.open("inventory?kind=users", "inventory")
		vera.run("asking to revoke alice",
			chromedp.Click(chromedp.CSS(`button[data-revoke="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.confirm button[data-confirm="yes"]`)),
			chromedp.Click(chromedp.CSS(`.confirm button[data-confirm="yes"]`)))
		vera.waitFor("the refusal", `document.getElementById("flash").classList.contains("error")`)
		if f := vera.flashText(); !strings.Contains(f, "403") || !strings.Contains(f, "needs the administrator role") {
			t.Errorf("viewer's revocation: status line %q", f)
		}
		vera.shot("viewer-refused")
		if got, err := callTool(ctx, alice, "read_file", `{"path":"/srv/docs/b.txt"}`); err != nil {
			t.Fatalf("alice after the viewer's attempt: %q %v", got, err)
		}
	})

	t.Run("an approver approves and the waiting client continues", func(t *testing.T) {
		// The client keeps asking until the call is approved (the
		// gateway answers with the approval link until then).
		done := make(chan error, 1)
		var result string
		go func() {
			for {
				got, err := callTool(ctx, alice, "deploy", `{"env":"prod"}`)
				if err == nil {
					result = got
					done <- nil
					return
				}
				select {
				case <-ctx.Done():
					done <- fmt.Errorf("still waiting: %v", err)
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		carol := newConsoleUser(t, browser, w.base, "carol", dir)
		carol.signIn()
		carol.waitFor("the pending approval on the overview", `document.querySelectorAll(".card")[1].querySelector(".big").textContent === "1"`)
		carol.shot("overview-pending")
		carol.open("approvals", "approvals")
		carol.waitFor("the exact arguments", `[...document.querySelectorAll("tr[data-approval] pre")].some(p => p.textContent.includes('"env": "prod"'))`)
		carol.shot("approvals-pending")
		select {
		case err := <-done:
			t.Fatalf("the call ended before approval: %v %q", err, result)
		default:
		}
		carol.run("approving", chromedp.Click(chromedp.CSS(`tr[data-approval] button[data-approve]`)))
		carol.waitFor("the decision", `document.getElementById("flash").textContent.startsWith("Approved")`)
		if err := <-done; err != nil || !strings.Contains(result, "deployed") || !strings.Contains(result, "prod") {
			t.Fatalf("the waiting client after approval: %q %v", result, err)
		}
		carol.open("approvals", "approvals")
		carol.waitFor("the decision in the history", `[...document.querySelectorAll("td")].some(td => td.textContent === "carol")`)
		carol.shot("approvals-history")

		// The approval pages (the link URL-mode elicitation sends) share
		// the sign-in, and sign out with their own button.
		carol.run("opening the approval pages",
			chromedp.Navigate(w.base+"/approvals/"),
			chromedp.WaitVisible(chromedp.CSS(`form.signout button`)))
		carol.shot("approval-pages")
		carol.run("signing out of the approval pages",
			chromedp.Click(chromedp.CSS(`form.signout button`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/oauth/logout"] button`)))
		carol.shot("approval-pages-signed-out")
		// End the authorization server's sign-in as that button does (a
		// POST to /oauth/logout; posted from the console's page, whose
		// script may fetch), then the approval pages ask for the password
		// again: their own cookie is gone too.
		carol.run("opening the console", chromedp.Navigate(w.base+"/console/"), chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="overview"]`)))
		if st := value(carol, "signing out of the authorization server", chromedp.Evaluate[int64](`fetch("/oauth/logout", {method: "POST"}).then(r => r.status)`, chromedp.EvalAwaitPromise)); st != 204 {
			t.Errorf("POST /oauth/logout: HTTP %d", st)
		}
		carol.run("opening the approval pages again",
			chromedp.Navigate(w.base+"/approvals/"),
			chromedp.WaitVisible(chromedp.CSS(`#password`)))
	})

	bob := newConsoleUser(t, browser, w.base, "bob", dir)
	bob.signIn()
	bob.shot("overview")

	t.Run("an administrator finds a user's path", func(t *testing.T) {
		bob.open("inventory?kind=users", "inventory")
		bob.shot("inventory-users")
		bob.run("showing alice's path", chromedp.Click(chromedp.CSS(`button[data-path-of="alice"]`)))
		bob.waitFor("the path user → client → session → upstream → tools",
			`!!document.querySelector('.path .node[data-kind="user"][data-id="alice"] .node[data-kind="client"] .node[data-kind="session"] .node[data-kind="upstream"][data-id="files"] .node[data-kind="tool"]')`)
		bob.shot("inventory-path")
		bob.open("inventory?kind=sessions", "inventory")
		bob.waitFor("alice's session", `[...document.querySelectorAll("tbody tr")].some(tr => tr.textContent.includes("alice"))`)
	})

	t.Run("an administrator revokes the user and the session ends", func(t *testing.T) {
		bob.open("inventory?kind=users", "inventory")
		bob.run("revoking alice",
			chromedp.Click(chromedp.CSS(`button[data-revoke="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.confirm input[name="reason"]`)),
			chromedp.SendKeys(chromedp.CSS(`.confirm input[name="reason"]`), "left the company"))
		bob.shot("inventory-revoke-confirm")
		bob.run("confirming", chromedp.Click(chromedp.CSS(`.confirm button[data-confirm="yes"]`)))
		bob.waitFor("the revocation", `document.getElementById("flash").textContent.startsWith("Revoked user alice")`)
		if _, err := callTool(ctx, alice, "read_file", `{"path":"/srv/docs/a.txt"}`); err == nil {
			t.Error("alice's session still works after the revocation")
		}
		bob.open("inventory?kind=sessions", "inventory")
		bob.waitFor("alice's session to end", `![...document.querySelectorAll("tbody tr")].some(tr => tr.textContent.includes("alice"))`)
		bob.open("inventory?kind=users", "inventory")
		bob.waitFor("alice shown revoked", `!!document.querySelector('button[data-reinstate="alice"]')`)
		bob.shot("inventory-revoked")
	})

	t.Run("an administrator searches the audit log and verifies the chain", func(t *testing.T) {
		bob.open("audit", "audit")
		bob.run("searching alice's denied and approval-required calls",
			chromedp.SendKeys(chromedp.CSS(`#audit-filters input[name="principal"]`), "alice"),
			chromedp.SendKeys(chromedp.CSS(`#audit-filters input[name="tool"]`), "deploy"),
			chromedp.Evaluate[chromedp.Void](`document.body.dataset.loaded = ""; true`),
			chromedp.Click(chromedp.CSS(`#audit-filters button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="audit"]`)))
		bob.waitFor("deploy records with their provenance",
			`[...document.querySelectorAll("tr[data-seq]")].some(tr => tr.textContent.includes("approval_required") && tr.querySelector(".provenance").textContent.includes("approve-deploy"))`)
		bob.run("verifying the chain", chromedp.Click(chromedp.CSS(`#verify`)))
		bob.waitFor("the verification", `!!document.querySelector("#verify-result .result")`)
		res := value(bob, "reading the result", chromedp.Text(chromedp.CSS(`#verify-result .result`)))
		if !strings.Contains(res, "Chain verified") || !strings.Contains(res, "audit log OK") {
			t.Errorf("verification result %q", res)
		}
		bob.shot("audit")
	})

	t.Run("an administrator runs a policy dry run", func(t *testing.T) {
		bob.open("policies", "policies")
		bob.run("asking whether carol may deploy to prod",
			chromedp.SetValue(chromedp.CSS(`#dry-run input[name="principal"]`), "carol"),
			chromedp.SetValue(chromedp.CSS(`#dry-run input[name="tool"]`), "files/deploy"),
			chromedp.SetValue(chromedp.CSS(`#dry-run textarea[name="arguments"]`), `{"env":"prod"}`),
			chromedp.Click(chromedp.CSS(`#dry-run button[type=submit]`)))
		bob.waitFor("the decision", `!!document.querySelector("#dry-run-result .result")`)
		res := value(bob, "reading the decision", chromedp.Text(chromedp.CSS(`#dry-run-result .result`)))
		if !strings.Contains(res, "approval_required") || !strings.Contains(res, "approve-deploy") {
			t.Errorf("carol deploy: %q", res)
		}
		bob.run("asking whether bob may deploy",
			chromedp.SetValue(chromedp.CSS(`#dry-run input[name="principal"]`), "bob"),
			chromedp.Click(chromedp.CSS(`#dry-run button[type=submit]`)))
		bob.waitFor("the denial", `document.querySelector("#dry-run-result .result").textContent.includes("bob-no-deploy")`)
		res = value(bob, "reading the decision", chromedp.Text(chromedp.CSS(`#dry-run-result .result`)))
		if !strings.Contains(res, "deny") {
			t.Errorf("bob deploy: %q", res)
		}
		bob.shot("policies")
	})

	t.Run("clients and tools awaiting approval", func(t *testing.T) {
		bob.open("trust", "trust")
		bob.shot("trust")
	})

	t.Run("sign-out", func(t *testing.T) {
		bob.run("signing out", chromedp.Click(chromedp.CSS(`#signout`)))
		bob.waitFor("the signed-out page", `document.querySelector("main h1").textContent === "Signed out"`)
		status := value(bob, "asking the API after sign-out", chromedp.Evaluate[int64](`fetch("/console/api/me").then(r => r.status)`, chromedp.EvalAwaitPromise))
		if status != 401 {
			t.Errorf("API after sign-out: HTTP %d", status)
		}
	})
}

// addUser adds a local user NAME with password NAME-password to the
// database in dataDir.
func addUser(t *testing.T, dataDir, name string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, datadir.Database(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash, err := authserver.HashPassword(name+"-password", &cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, &store.User{Username: name, PasswordHash: hash, CreatedAt: time.Now()}); err != nil && !errors.Is(err, store.ErrExists) {
		t.Fatal(err)
	}
}
