package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Match selects what a revocation hook acts on. Revoke sets exactly one
// field; IsRevoked accepts several (a request's user, client, grant and
// identity provider) and reports whether any is revoked.
type Match struct {
	// User is a username or token subject.
	User string
	// Client is a client_id.
	Client string
	// Grant is a grant family id, or the jti of a token without family.
	Grant string
	// IdP is the issuer URL of an identity provider.
	IdP string
}

// String names the match for messages.
func (m Match) String() string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"user", m.User}, {"client", m.Client}, {"grant", m.Grant}, {"idp", m.IdP}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	return strings.Join(parts, ",")
}

// RevocationHooks are how a revocation reaches the running parts of the
// gateway. Each is optional; a nil hook is reported as skipped. Hooks get
// a context whose deadline is the revocation deadline and must return by
// then.
type RevocationHooks struct {
	// RevokeTokens makes the authorization server refuse every token of
	// the user, client, grant or identity provider from now on, and
	// returns how many it revoked. StoreTokenRevoker implements it on the
	// identity store.
	RevokeTokens func(ctx context.Context, match Match) (int, error)
	// CloseSessions closes the matching downstream sessions and returns
	// how many.
	CloseSessions func(ctx context.Context, match Match) (int, error)
	// CancelTasks cancels the matching principals' running tasks and
	// returns how many.
	CancelTasks func(ctx context.Context, match Match) (int, error)
	// DropUpstreamCredential forgets a principal's credential for an
	// upstream and closes the upstream session that used it.
	DropUpstreamCredential func(ctx context.Context, principal, upstream string) error
	// DistrustIdP stops accepting assertions and sign-ins from issuer.
	DistrustIdP func(ctx context.Context, issuer string) error
	// EndUpstreamAccess ends what the matching principals hold at the
	// upstreams: their upstream sessions (and the stdio processes run for
	// them) and their per-user upstream grants (revoked at the upstream's
	// authorization server where it can be). It runs after CancelTasks,
	// which needs those sessions to cancel the tasks at the upstreams, and
	// returns how many sessions and grants it ended. What it could not do
	// it reports with Note.
	EndUpstreamAccess func(ctx context.Context, match Match) (int, error)
}

type noteKey struct{}

type notes struct {
	mu   sync.Mutex
	list []string
}

// Note adds a remark to the step of a revocation whose hook runs with ctx
// (what it could not do and why, say "the upstream's authorization server
// offers no revocation endpoint"). The remarks are in Step.Notes, in the
// revocation's audit record and in the applied note kept in the store.
// Outside a hook it does nothing.
func Note(ctx context.Context, format string, args ...any) {
	n, _ := ctx.Value(noteKey{}).(*notes)
	if n == nil {
		return
	}
	n.mu.Lock()
	n.list = append(n.list, fmt.Sprintf(format, args...))
	n.mu.Unlock()
}

// RevokerOptions configure a Revoker.
type RevokerOptions struct {
	// Hooks are the initial hooks; more can be registered with Register.
	Hooks RevocationHooks
	// Deadline bounds a whole Revoke (recording and every hook); default
	// 1 second. Steps still running then are reported as failed.
	Deadline time.Duration
	// RefreshInterval is how stale IsRevoked's view of the store may get
	// (revocations recorded by another process, such as the command
	// line); default 1 second.
	RefreshInterval time.Duration
	// OnEvent receives an EventRevoked for every revocation (with its
	// Result) and EventRevocationLifted for Reinstate. Nil drops them.
	OnEvent func(Event)
	// MarkApplied says that this Revoker belongs to a gateway whose hooks
	// close sessions and cancel tasks: every revocation it applies is
	// marked applied in the store (store.Revocation.AppliedAt), and a
	// revocation recorded without being applied (by the command line while
	// no gateway ran) is applied by its first Sync. Without it (the
	// command line) nothing is marked.
	MarkApplied bool
	// Now overrides the clock (tests).
	Now func() time.Time
}

// upstreamTokens is the part of store.UpstreamTokenStore the inventory
// uses: the gateway's sealed per-user upstream tokens, listed as
// credentials and deleted when an upstream credential is revoked.
type upstreamTokens interface {
	GetUpstreamToken(ctx context.Context, principal, upstream string) (*store.UpstreamToken, error)
	DeleteUpstreamToken(ctx context.Context, principal, upstream string) error
	ListUpstreamTokens(ctx context.Context, principal string) ([]*store.UpstreamToken, error)
}

// Step is the outcome of one part of a revocation.
type Step struct {
	// Name is "record", "inventory" or the hook's name
	// ("RevokeTokens", "CloseSessions", "CancelTasks",
	// "DropUpstreamCredential", "DistrustIdP").
	Name string
	// Count is what the hook reported (tokens revoked, sessions closed,
	// tasks cancelled).
	Count int
	// Skipped reports a hook that is not registered.
	Skipped bool
	// Err is why the step failed (context.DeadlineExceeded if it did not
	// finish in time).
	Err error
	// Duration is how long it ran (up to the deadline).
	Duration time.Duration
	// Notes are the hook's remarks (see Note).
	Notes []string
}

// Result is the outcome of a revocation: every step, failed or not.
type Result struct {
	// Kind and ID name what was revoked; By who revoked it.
	Kind, ID, By string
	// At is when.
	At time.Time
	// Match is what the hooks were given.
	Match Match
	// Durable reports that the revocation is recorded in the store (and
	// so survives a restart).
	Durable bool
	// Steps are in a fixed order: record, then hooks.
	Steps []Step
	// Duration is how long Revoke took.
	Duration time.Duration
	// Elsewhere reports a revocation recorded by another process (the
	// command line, another replica) and applied here by Sync; At is
	// then when it was recorded, Applied when it was applied here.
	Elsewhere bool
	Applied   time.Time
}

// Notes returns the remarks of every step, each prefixed with its step.
func (r *Result) Notes() []string {
	var out []string
	for _, s := range r.Steps {
		for _, n := range s.Notes {
			out = append(out, s.Name+": "+n)
		}
	}
	return out
}

// Err joins the errors of the failed steps (nil if none failed).
func (r *Result) Err() error {
	var errs []error
	for _, s := range r.Steps {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, s.Err))
		}
	}
	return errors.Join(errs...)
}

// Summary renders the result on one line per step.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "revoked %s %s (durable: %v, %s)\n", r.Kind, r.ID, r.Durable, r.Duration.Round(time.Microsecond))
	for _, s := range r.Steps {
		switch {
		case s.Skipped:
			fmt.Fprintf(&b, "  %-22s skipped (not available here)\n", s.Name)
		case s.Err != nil:
			fmt.Fprintf(&b, "  %-22s FAILED: %v\n", s.Name, s.Err)
		default:
			fmt.Fprintf(&b, "  %-22s ok (%d)\n", s.Name, s.Count)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "  %-22s note: %s\n", "", n)
		}
	}
	return b.String()
}

// Revoker revokes users, clients, grants, upstream credentials and trust
// in identity providers in one place, and answers whether something is
// revoked.
type Revoker struct {
	st   store.InventoryStore
	opts RevokerOptions

	hooksMu sync.Mutex
	hooks   RevocationHooks

	mu       sync.Mutex
	revoked  map[[2]string]*store.Revocation
	loadedAt time.Time
	loading  bool
	applied  map[[2]string]bool              // revocations whose hooks ran in this process
	local    map[[2]string]*store.Revocation // made here, not (yet) durable
	idpPfx   []string                        // federated-subject prefixes of revoked IdPs
}

// NewRevoker returns a Revoker that records revocations in st and loads
// the revocations already recorded there.
func NewRevoker(ctx context.Context, st store.InventoryStore, opts *RevokerOptions) (*Revoker, error) {
	if st == nil {
		return nil, errors.New("inventory: nil store")
	}
	r := &Revoker{st: st, applied: map[[2]string]bool{}, local: map[[2]string]*store.Revocation{}}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.Deadline <= 0 {
		r.opts.Deadline = time.Second
	}
	if r.opts.RefreshInterval <= 0 {
		r.opts.RefreshInterval = time.Second
	}
	if r.opts.Now == nil {
		r.opts.Now = time.Now
	}
	r.hooks = r.opts.Hooks
	revs, err := st.ListRevocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: loading revocations: %w", err)
	}
	r.setRevoked(revs)
	// What a gateway applied before this process started needs nothing
	// more here (there is nothing live to close yet). What no gateway
	// applied (recorded by the command line while none ran) is applied by
	// the first Sync, which the gateway runs before it serves.
	for k, rv := range r.revoked {
		if !r.opts.MarkApplied || !rv.AppliedAt.IsZero() {
			r.applied[k] = true
		}
	}
	return r, nil
}

// setRevoked replaces the cached set. Called with r.mu held or before
// the Revoker is shared.
func (r *Revoker) setRevoked(revs []*store.Revocation) {
	r.revoked = make(map[[2]string]*store.Revocation, len(revs))
	r.idpPfx = nil
	for _, rv := range revs {
		r.revoked[[2]string{rv.Kind, rv.ID}] = rv
		if rv.Kind == store.RevokeIdP {
			r.idpPfx = append(r.idpPfx, rv.ID)
		}
	}
	r.loadedAt = r.opts.Now()
}

// Register sets the non-nil hooks of h, replacing those registered
// before. The authorization server and the gateway each register theirs.
func (r *Revoker) Register(h RevocationHooks) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	if h.RevokeTokens != nil {
		r.hooks.RevokeTokens = h.RevokeTokens
	}
	if h.CloseSessions != nil {
		r.hooks.CloseSessions = h.CloseSessions
	}
	if h.CancelTasks != nil {
		r.hooks.CancelTasks = h.CancelTasks
	}
	if h.DropUpstreamCredential != nil {
		r.hooks.DropUpstreamCredential = h.DropUpstreamCredential
	}
	if h.DistrustIdP != nil {
		r.hooks.DistrustIdP = h.DistrustIdP
	}
	if h.EndUpstreamAccess != nil {
		r.hooks.EndUpstreamAccess = h.EndUpstreamAccess
	}
}

// ParseKind checks a revocation kind and id and returns the Match the
// hooks get (upstream-credential ids are "<upstream>/<principal>" and get
// an empty Match).
func ParseKind(kind, id string) (Match, error) {
	if id == "" {
		return Match{}, fmt.Errorf("inventory: revoke %s: empty id", kind)
	}
	switch kind {
	case store.RevokeUser:
		return Match{User: id}, nil
	case store.RevokeClient:
		return Match{Client: id}, nil
	case store.RevokeGrant:
		return Match{Grant: id}, nil
	case store.RevokeIdP:
		return Match{IdP: id}, nil
	case store.RevokeUpstreamCredential:
		up, principal, ok := strings.Cut(id, "/")
		if !ok || up == "" || principal == "" {
			return Match{}, fmt.Errorf("inventory: revoke upstream-credential: id %q must be <upstream>/<principal>", id)
		}
		return Match{}, nil
	}
	return Match{}, fmt.Errorf("inventory: unknown revocation kind %q (want user, client, grant, upstream-credential or idp)", kind)
}

// Revoke revokes an identity: kind is user, client, grant,
// upstream-credential (id "<upstream>/<principal>") or idp (id the issuer
// URL); by names who revoked it. From the moment it is called IsRevoked
// reports the identity revoked in this process. The revocation is then
// recorded durably and every applicable hook runs, concurrently, within
// RevokerOptions.Deadline; a hook that has not returned by then is
// reported as failed with context.DeadlineExceeded and left running with
// its context cancelled. The Result lists every step; the error joins the
// failed steps' errors, so a partial failure is never silent. An
// EventRevoked is emitted in every case.
func (r *Revoker) Revoke(ctx context.Context, kind, id, by string) (*Result, error) {
	return r.RevokeWithReason(ctx, kind, id, by, "")
}

// RevokeWithReason is Revoke with a free-text reason that is recorded
// with the revocation.
func (r *Revoker) RevokeWithReason(ctx context.Context, kind, id, by, reason string) (*Result, error) {
	m, err := ParseKind(kind, id)
	if err != nil {
		return nil, err
	}
	start := r.opts.Now()
	rev := &store.Revocation{Kind: kind, ID: id, By: by, Reason: reason, At: start}
	key := [2]string{kind, id}
	r.mu.Lock()
	r.revoked[key] = rev
	if kind == store.RevokeIdP && !slices.Contains(r.idpPfx, id) {
		r.idpPfx = append(r.idpPfx, id)
	}
	r.applied[key] = true
	r.local[key] = rev
	r.mu.Unlock()

	res := r.apply(ctx, rev, m, true)
	if res.Durable {
		r.mu.Lock()
		delete(r.local, key)
		r.mu.Unlock()
		r.markApplied(ctx, res)
	}
	r.emit(res)
	return res, res.Err()
}

// markApplied records in the store that res was applied here (with
// MarkApplied), so that a gateway started later does not apply it again.
func (r *Revoker) markApplied(ctx context.Context, res *Result) {
	if !r.opts.MarkApplied {
		return
	}
	note := "applied"
	if err := res.Err(); err != nil {
		note += "; partial failure: " + err.Error()
	}
	if ns := res.Notes(); len(ns) > 0 {
		note += "; " + strings.Join(ns, "; ")
	}
	res.Applied = time.Now()
	// The revocation is in force whatever happens to this write; a
	// failure only means a later start applies it again.
	_ = r.st.MarkRevocationApplied(context.WithoutCancel(ctx), res.Kind, res.ID, res.Applied, note)
}

// apply records rev (if record) and runs the hooks within the deadline.
func (r *Revoker) apply(ctx context.Context, rev *store.Revocation, m Match, record bool) *Result {
	start := time.Now()
	res := &Result{Kind: rev.Kind, ID: rev.ID, By: rev.By, At: rev.At, Match: m}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Deadline)
	defer cancel()

	r.hooksMu.Lock()
	h := r.hooks
	r.hooksMu.Unlock()

	type job struct {
		name  string
		run   func(context.Context) (int, error) // nil: skipped
		after string                             // the job that must finish first
	}
	var jobs []job
	if record {
		jobs = append(jobs, job{name: "record", run: func(ctx context.Context) (int, error) { return 1, r.st.PutRevocation(ctx, rev) }})
	}
	countHook := func(name string, f func(context.Context, Match) (int, error), after string) {
		if f == nil {
			jobs = append(jobs, job{name: name})
			return
		}
		jobs = append(jobs, job{name: name, run: func(ctx context.Context) (int, error) { return f(ctx, m) }, after: after})
	}
	switch rev.Kind {
	case store.RevokeUpstreamCredential:
		up, principal, _ := strings.Cut(rev.ID, "/")
		// The gateway's hook revokes the grant at the upstream's
		// authorization server, for which it needs the sealed token: the
		// token is deleted after it. Without the hook (the command line)
		// the sealed token is left for a gateway to revoke and delete when
		// it applies the revocation.
		dropped := h.DropUpstreamCredential != nil
		if !dropped {
			jobs = append(jobs, job{name: "DropUpstreamCredential"})
		} else {
			jobs = append(jobs, job{name: "DropUpstreamCredential", run: func(ctx context.Context) (int, error) {
				return 1, h.DropUpstreamCredential(ctx, principal, up)
			}})
		}
		inv := job{name: "inventory", run: func(ctx context.Context) (int, error) {
			n := 1
			err := r.st.DeleteUpstreamCredential(ctx, principal, up)
			if errors.Is(err, store.ErrNotFound) {
				n, err = 0, nil
			}
			if err != nil {
				return 0, err
			}
			ts, ok := r.st.(upstreamTokens)
			if !ok {
				return n, nil
			}
			if _, err := ts.GetUpstreamToken(ctx, principal, up); err != nil {
				return n, nil
			}
			if !dropped {
				Note(ctx, "the sealed upstream token is kept until a gateway revokes it at the upstream and deletes it")
				return n, nil
			}
			if err := ts.DeleteUpstreamToken(ctx, principal, up); err != nil {
				return n, fmt.Errorf("deleting the stored upstream token: %w", err)
			}
			return n + 1, nil
		}}
		if dropped {
			inv.after = "DropUpstreamCredential"
		}
		jobs = append(jobs, inv)
	default:
		if rev.Kind == store.RevokeIdP {
			if h.DistrustIdP == nil {
				jobs = append(jobs, job{name: "DistrustIdP"})
			} else {
				jobs = append(jobs, job{name: "DistrustIdP", run: func(ctx context.Context) (int, error) { return 1, h.DistrustIdP(ctx, rev.ID) }})
			}
		}
		countHook("RevokeTokens", h.RevokeTokens, "")
		countHook("CloseSessions", h.CloseSessions, "")
		countHook("CancelTasks", h.CancelTasks, "")
		after := "CancelTasks"
		if h.CancelTasks == nil {
			after = ""
		}
		countHook("EndUpstreamAccess", h.EndUpstreamAccess, after)
	}

	type done struct {
		i     int
		count int
		err   error
		d     time.Duration
		notes []string
	}
	res.Steps = make([]Step, len(jobs))
	finished := make([]bool, len(jobs))
	ended := map[string]chan struct{}{} // closed when the named job ends
	for _, j := range jobs {
		ended[j.name] = make(chan struct{})
	}
	ch := make(chan done, len(jobs)) // buffered: late hooks never block
	pending := 0
	for i, j := range jobs {
		res.Steps[i].Name = j.name
		if j.run == nil {
			res.Steps[i].Skipped = true
			finished[i] = true
			close(ended[j.name])
			continue
		}
		pending++
		go func() {
			defer close(ended[j.name])
			if j.after != "" {
				select {
				case <-ended[j.after]:
				case <-ctx.Done():
					ch <- done{i: i, err: ctx.Err()}
					return
				}
			}
			t := time.Now()
			ns := &notes{}
			n, err := safeRun(context.WithValue(ctx, noteKey{}, ns), j.run)
			ns.mu.Lock()
			list := slices.Clone(ns.list)
			ns.mu.Unlock()
			ch <- done{i, n, err, time.Since(t), list}
		}()
	}
	for pending > 0 {
		select {
		case d := <-ch:
			pending--
			finished[d.i] = true
			res.Steps[d.i].Count, res.Steps[d.i].Err, res.Steps[d.i].Duration, res.Steps[d.i].Notes = d.count, d.err, d.d, d.notes
			if d.err == nil && jobs[d.i].name == "record" {
				res.Durable = true
			}
		case <-ctx.Done():
			for i := range jobs {
				if !finished[i] {
					res.Steps[i].Err = fmt.Errorf("did not finish within %v: %w", r.opts.Deadline, ctx.Err())
					res.Steps[i].Duration = time.Since(start)
				}
			}
			pending = 0
		}
	}
	res.Duration = time.Since(start)
	return res
}

// safeRun runs f, turning a panic into an error so that one broken hook
// cannot take the revocation down with it.
func safeRun(ctx context.Context, f func(context.Context) (int, error)) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hook panicked: %v", p)
		}
	}()
	return f(ctx)
}

func (r *Revoker) emit(res *Result) {
	if r.opts.OnEvent == nil {
		return
	}
	ev := Event{Time: res.At, Kind: EventRevoked, By: res.By, Revocation: res,
		Detail: fmt.Sprintf("%s %s revoked by %s", res.Kind, res.ID, res.By)}
	switch res.Kind {
	case store.RevokeUser:
		ev.User = res.ID
	case store.RevokeClient:
		ev.Client = res.ID
	case store.RevokeUpstreamCredential:
		ev.Upstream, ev.User, _ = strings.Cut(res.ID, "/")
	}
	if res.Elsewhere {
		ev.Detail += fmt.Sprintf(" at %s in another process (the command line or another replica); applied here", res.At.UTC().Format(time.RFC3339))
	}
	if err := res.Err(); err != nil {
		ev.Detail += "; partial failure: " + err.Error()
	}
	if ns := res.Notes(); len(ns) > 0 {
		ev.Detail += "; " + strings.Join(ns, "; ")
	}
	r.opts.OnEvent(ev)
}

// Reinstate lifts a revocation (the identity must obtain new tokens;
// revoked tokens stay revoked). by names who lifted it.
func (r *Revoker) Reinstate(ctx context.Context, kind, id, by string) error {
	if _, err := ParseKind(kind, id); err != nil {
		return err
	}
	err := r.st.DeleteRevocation(ctx, kind, id)
	r.mu.Lock()
	_, onlyLocal := r.local[[2]string{kind, id}]
	if err != nil && !(onlyLocal && errors.Is(err, store.ErrNotFound)) {
		r.mu.Unlock()
		return fmt.Errorf("inventory: reinstating %s %q: %w", kind, id, err)
	}
	delete(r.revoked, [2]string{kind, id})
	delete(r.applied, [2]string{kind, id})
	delete(r.local, [2]string{kind, id})
	if kind == store.RevokeIdP {
		r.idpPfx = slices.DeleteFunc(r.idpPfx, func(s string) bool { return s == id })
	}
	r.mu.Unlock()
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(Event{Time: r.opts.Now(), Kind: EventRevocationLifted, By: by, Detail: fmt.Sprintf("revocation of %s %s lifted by %s", kind, id, by)})
	}
	return nil
}

// IsRevoked reports whether any identity named in m is revoked: the user,
// the client, the grant, the identity provider, or the provider that
// vouched for a federated user. Revocations recorded by other processes
// are seen within RevokerOptions.RefreshInterval; if the store cannot be
// read, the last known set is used.
func (r *Revoker) IsRevoked(ctx context.Context, m Match) bool {
	r.maybeRefresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isRevokedLocked(m)
}

func (r *Revoker) isRevokedLocked(m Match) bool {
	if m.User != "" && r.revoked[[2]string{store.RevokeUser, m.User}] != nil {
		return true
	}
	if m.Client != "" && r.revoked[[2]string{store.RevokeClient, m.Client}] != nil {
		return true
	}
	if m.Grant != "" && r.revoked[[2]string{store.RevokeGrant, m.Grant}] != nil {
		return true
	}
	if m.IdP != "" && r.revoked[[2]string{store.RevokeIdP, m.IdP}] != nil {
		return true
	}
	return m.User != "" && IdPOfSubject(m.User, r.idpPfx) != ""
}

// RevokedIdP returns the issuer of the revoked identity provider that
// vouched for subject (a federated subject), or "" if there is none.
func (r *Revoker) RevokedIdP(ctx context.Context, subject string) string {
	r.maybeRefresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	return IdPOfSubject(subject, r.idpPfx)
}

// IsUpstreamCredentialRevoked reports whether principal's credential for
// upstream was revoked (the gateway must then obtain a new one).
func (r *Revoker) IsUpstreamCredentialRevoked(ctx context.Context, principal, upstream string) bool {
	r.maybeRefresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revoked[[2]string{store.RevokeUpstreamCredential, upstream + "/" + principal}] != nil
}

// Revocations returns the known revocations.
func (r *Revoker) Revocations(ctx context.Context) []store.Revocation {
	r.maybeRefresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]store.Revocation, 0, len(r.revoked))
	for _, rv := range r.revoked {
		out = append(out, *rv)
	}
	slices.SortFunc(out, func(a, b store.Revocation) int {
		return strings.Compare(a.Kind+"\x00"+a.ID, b.Kind+"\x00"+b.ID)
	})
	return out
}

// maybeRefresh reloads the revocations when the cache is older than the
// refresh interval. One caller reloads; others use the current set.
func (r *Revoker) maybeRefresh(ctx context.Context) {
	r.mu.Lock()
	if r.loading || r.opts.Now().Sub(r.loadedAt) < r.opts.RefreshInterval {
		r.mu.Unlock()
		return
	}
	r.loading = true
	r.mu.Unlock()
	revs, err := r.st.ListRevocations(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loading = false
	if err != nil {
		return
	}
	// Keep revocations made in this process that are not (yet) durable:
	// they still apply here.
	for k, rv := range r.local {
		if !slices.ContainsFunc(revs, func(x *store.Revocation) bool { return x.Kind == k[0] && x.ID == k[1] }) {
			revs = append(revs, rv)
		}
	}
	r.setRevoked(revs)
}

// Sync reloads the revocations and runs the hooks (without recording
// again) for those recorded by another process, such as `mcpgate
// revoke`, since the last Sync. The gateway calls it periodically (see
// Run) so that sessions and tasks of an identity revoked from the command
// line are closed too. It returns the results of what it applied.
func (r *Revoker) Sync(ctx context.Context) ([]*Result, error) {
	revs, err := r.st.ListRevocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: loading revocations: %w", err)
	}
	var todo []*store.Revocation
	r.mu.Lock()
	for _, rv := range revs {
		k := [2]string{rv.Kind, rv.ID}
		if !r.applied[k] {
			r.applied[k] = true
			todo = append(todo, rv)
		}
	}
	r.mu.Unlock()
	r.mu.Lock()
	r.loadedAt = time.Time{} // force the next IsRevoked to reload
	r.mu.Unlock()
	r.maybeRefresh(ctx)
	var out []*Result
	for _, rv := range todo {
		m, err := ParseKind(rv.Kind, rv.ID)
		if err != nil {
			continue // a kind this version does not know: keep it, apply nothing
		}
		res := r.apply(ctx, rv, m, false)
		res.Elsewhere = true
		r.markApplied(ctx, res)
		r.emit(res)
		out = append(out, res)
	}
	return out, nil
}

// Run calls Sync every RefreshInterval until ctx is done. Errors, and
// the failed steps of revocations it applied, are passed to onError
// (which may be nil).
func (r *Revoker) Run(ctx context.Context, onError func(error)) {
	t := time.NewTicker(r.opts.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			results, err := r.Sync(ctx)
			if onError == nil {
				continue
			}
			if err != nil {
				onError(err)
			}
			for _, res := range results {
				if err := res.Err(); err != nil {
					onError(fmt.Errorf("applying revocation of %s %s: %w", res.Kind, res.ID, err))
				}
			}
		}
	}
}
