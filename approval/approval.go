// Package approval implements human approval of risky tool calls.
//
// When a policy requires approval, the gateway calls [Service.Request]
// and sends the caller to the approval's URL (by URL-mode elicitation, or
// by leaving the task in input_required). An approver opens that page
// (served by [Service.Handler]) and approves or denies. The caller then
// retries the call; the gateway calls [Service.Consume] with the same
// request, which succeeds once for an approved, unexpired approval whose
// binding matches exactly.
//
// An approval is bound to a digest of (principal, tool, canonical
// arguments, policy version) (see [Binding]): changing any of them, even
// the policy set, needs a new approval. Approvals are single use, expire
// (10 minutes by default) and fail closed: unknown approvals, store
// errors, expired, denied, pending and already used approvals all give
// errors that match [ErrNotApproved].
//
// The core ([Service] methods) knows nothing of HTTP; only the approver
// pages in handler.go do.
package approval

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/store"
)

// DefaultTTL is how long an approval stays decidable and usable when
// Options.TTL is not set.
const DefaultTTL = 10 * time.Minute

// MaxNoteLength is the longest approver note, in bytes, that Decide
// accepts.
const MaxNoteLength = 2000

// Errors. Every error from Consume, and every error about a missing,
// expired, denied, pending or used approval, matches ErrNotApproved with
// errors.Is, so that a caller that only checks ErrNotApproved fails
// closed.
var (
	// ErrNotApproved reports that no usable approval exists for a call.
	ErrNotApproved = errors.New("approval: call not approved")
	// ErrDenied reports that an approver denied the call.
	ErrDenied = fmt.Errorf("%w: denied by an approver", ErrNotApproved)
	// ErrExpired reports an approval that expired before it was decided
	// or used.
	ErrExpired = fmt.Errorf("%w: approval expired", ErrNotApproved)
	// ErrPending reports an approval still waiting for an approver.
	ErrPending = fmt.Errorf("%w: approval still pending", ErrNotApproved)
	// ErrConsumed reports an approval that was already used: a replay.
	ErrConsumed = fmt.Errorf("%w: approval already used", ErrNotApproved)
	// ErrNotFound reports an unknown approval id.
	ErrNotFound = fmt.Errorf("%w: no such approval", ErrNotApproved)

	// ErrSelfApproval reports an approver deciding on their own request.
	ErrSelfApproval = errors.New("approval: the requesting principal cannot decide their own request")
	// ErrDecided reports a decision on an approval that is no longer
	// pending.
	ErrDecided = errors.New("approval: already decided")
)

// Options configure a Service. The zero value is usable but serves no
// approver pages.
type Options struct {
	// TTL is how long an approval stays decidable and usable after it is
	// requested; DefaultTTL (10 minutes) if zero or negative.
	TTL time.Duration
	// BaseURL is the external URL where Handler is mounted, e.g.
	// "https://gw.example.com/approvals"; an approval's URL is
	// BaseURL + "/" + ID. An https BaseURL makes the pages' CSRF cookie
	// Secure and __Host- prefixed.
	BaseURL string
	// Approver authenticates an approver on the pages and returns their
	// identity, in the same namespace as Request.Principal (the two are
	// compared to refuse self-approval). nil refuses every page request.
	Approver func(r *http.Request) (approver string, ok bool)
	// Authenticate, if set, is used instead of Approver and may say why
	// it refuses: an error with an HTTPStatus() int method (and a
	// RetryAfterSeconds() int method) is answered with that status (and
	// a Retry-After header), for example 429 for a throttled password
	// check; any other error gets 401.
	Authenticate func(r *http.Request) (approver string, err error)
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Logger receives decisions and store failures (never argument
	// values); discarded if nil.
	Logger *slog.Logger
	// OnDecision, if set, is called after an approver's decision is
	// stored and audited (the gateway notifies the caller).
	OnDecision func(a *Approval)
	// Audit, if set, receives a record of every decision (ActionDecided)
	// and of every refused self-approval, in its hash chain. A decision
	// that is stored but cannot be recorded makes Decide fail (the
	// approver is told); it stays stored.
	Audit *audit.Log
}

// ActionDecided is the audit action of an approver's decision. Its
// record names the approver as User, the approval id as Target, the
// decision (audit.DecisionAllow or audit.DecisionDeny), the upstream, the
// policy version and policies of the request, the digest of the call's
// arguments (the same args_digest as the call's own records), and in
// Error a description of the request: its principal, client, session,
// tool, binding and the approver's note.
const ActionDecided = "approval.decided"

// Request describes a call that needs approval.
type Request struct {
	// Principal is the user or machine client making the call.
	Principal string
	// Client is the OAuth client the call came through.
	Client string
	// Session is the MCP session.
	Session string
	// Upstream is the upstream server that serves Tool.
	Upstream string
	// Tool is the tool name as the caller sees it (namespaced by the
	// gateway, so it identifies the upstream too).
	Tool string
	// Arguments are the call's arguments as sent (nil when absent).
	Arguments jsontext.Value
	// PolicyVersion is the hash of the policy set that required approval.
	PolicyVersion string
	// Policies are the ids of the policies that required approval.
	Policies []string
	// Reason is the explanation shown to the approver.
	Reason string
}

// Status is the state of an approval.
type Status string

// Approval states.
const (
	// StatusPending waits for an approver.
	StatusPending Status = "pending"
	// StatusApproved was approved and may be used once.
	StatusApproved Status = "approved"
	// StatusDenied was denied.
	StatusDenied Status = "denied"
	// StatusExpired expired while pending or approved.
	StatusExpired Status = "expired"
	// StatusConsumed was approved and used.
	StatusConsumed Status = "consumed"
)

// Approval is one request for approval and its outcome.
type Approval struct {
	// ID is the approval's unguessable identifier.
	ID string
	// Binding is Binding(Principal, Tool, Arguments, PolicyVersion) of the
	// request.
	Binding string
	// Request is the call that needs approval.
	Request Request
	// Status is the state at the time the Approval was read.
	Status Status
	// Approver is who decided, Note their comment.
	Approver, Note string
	// CreatedAt is when approval was requested, ExpiresAt when it stops
	// being decidable or usable, DecidedAt when an approver decided.
	CreatedAt, ExpiresAt, DecidedAt time.Time
	// URL is the approval page, BaseURL + "/" + ID.
	URL string
}

// Service creates, decides and consumes approvals. It is safe for
// concurrent use; several Services (in several processes) may share one
// store.
type Service struct {
	st       store.Approvals
	ttl      time.Duration
	baseURL  string // without trailing slash
	basePath string // path of baseURL, without trailing slash
	secure   bool   // baseURL is https
	approver func(*http.Request) (string, bool)
	// authenticate is Options.Authenticate.
	authenticate func(*http.Request) (string, error)
	now          func() time.Time
	log          *slog.Logger
	onDecision   func(*Approval)
	audit        *audit.Log
	pages        *template.Template
	cop          *http.CrossOriginProtection
	// browser is the browser sign-in (signin.go), nil without one.
	browser *browserSignIn

	// pollInterval bounds how long Wait sleeps between store reads, to
	// see decisions made by other processes and expiry.
	pollInterval time.Duration

	mu      sync.Mutex
	waiters map[string]*waiter
}

// waiter is a channel closed when an approval is decided here, shared by
// the n goroutines waiting for it.
type waiter struct {
	ch chan struct{}
	n  int
}

// New returns a Service that keeps approvals in st. A nil st gives a
// Service on which every operation fails (closed).
func New(st store.Approvals, opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	if st == nil {
		st = noStore{}
	}
	s := &Service{
		st:           st,
		ttl:          o.TTL,
		baseURL:      strings.TrimRight(o.BaseURL, "/"),
		approver:     o.Approver,
		authenticate: o.Authenticate,
		now:          o.Now,
		log:          o.Logger,
		onDecision:   o.OnDecision,
		audit:        o.Audit,
		pollInterval: time.Second,
		waiters:      make(map[string]*waiter),
		cop:          http.NewCrossOriginProtection(),
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if u, err := url.Parse(s.baseURL); err == nil {
		s.basePath = strings.TrimRight(u.Path, "/")
		s.secure = u.Scheme == "https"
		if u.Scheme != "" && u.Host != "" {
			// Browsers without Sec-Fetch-Site send Origin; behind a proxy
			// that rewrites Host, the external origin is the one to trust.
			_ = s.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
		}
	}
	s.pages = parsePages()
	return s
}

// newID returns a random approval id (128 bits, base64url).
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// effective returns the status of r at now, turning pending and approved
// approvals past their expiry into StatusExpired.
func effective(r *store.ApprovalRecord, now time.Time) Status {
	st := Status(r.Status)
	if (st == StatusPending || st == StatusApproved) && !r.ExpiresAt.After(now) {
		return StatusExpired
	}
	return st
}

func (s *Service) toApproval(r *store.ApprovalRecord, now time.Time) *Approval {
	a := &Approval{
		ID:      r.ID,
		Binding: r.Binding,
		Request: Request{
			Principal: r.Principal, Client: r.Client, Session: r.Session, Upstream: r.Upstream, Tool: r.Tool,
			PolicyVersion: r.PolicyVersion, Policies: slices.Clone(r.Policies), Reason: r.Reason,
		},
		Status:    effective(r, now),
		Approver:  r.Approver,
		Note:      r.Note,
		CreatedAt: r.CreatedAt,
		ExpiresAt: r.ExpiresAt,
		DecidedAt: r.DecidedAt,
		URL:       s.baseURL + "/" + r.ID,
	}
	if r.Arguments != nil {
		a.Request.Arguments = jsontext.Value(bytes.Clone(r.Arguments))
	}
	return a
}

// Request records that the call r needs approval and returns a pending
// approval for it. If an unexpired pending approval with the same binding
// exists (the caller retried before anyone decided), that one is returned
// instead of a new one. r must name a principal, a tool and a policy
// version, and its arguments must be valid for Binding.
func (s *Service) Request(ctx context.Context, r *Request) (*Approval, error) {
	if r == nil {
		return nil, errors.New("approval: nil request")
	}
	binding, err := Binding(r.Principal, r.Tool, r.Arguments, r.PolicyVersion)
	if err != nil {
		return nil, err
	}
	for what, v := range map[string]string{"client": r.Client, "session": r.Session, "upstream": r.Upstream, "reason": r.Reason} {
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("approval: request %s is not valid UTF-8", what)
		}
	}
	now := s.now()
	rec := &store.ApprovalRecord{
		ID: newID(), Binding: binding,
		Principal: r.Principal, Client: r.Client, Session: r.Session, Upstream: r.Upstream, Tool: r.Tool,
		PolicyVersion: r.PolicyVersion, Policies: slices.Clone(r.Policies), Reason: r.Reason,
		Status: store.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(s.ttl),
	}
	if len(r.Arguments) > 0 {
		rec.Arguments = bytes.Clone(r.Arguments)
	}
	stored, created, err := s.st.CreateApproval(ctx, rec, now)
	if err != nil {
		s.log.ErrorContext(ctx, "approval request not stored", "principal", r.Principal, "tool", r.Tool, "error", err)
		return nil, fmt.Errorf("approval: storing request: %w", err)
	}
	s.log.InfoContext(ctx, "approval requested", "id", stored.ID, "new", created, "principal", r.Principal, "client", r.Client,
		"upstream", r.Upstream, "tool", r.Tool, "policy_version", r.PolicyVersion, "expires_at", stored.ExpiresAt)
	return s.toApproval(stored, now), nil
}

// get reads one approval, mapping a missing one to ErrNotFound and store
// failures to errors that match ErrNotApproved.
func (s *Service) get(ctx context.Context, id string) (*store.ApprovalRecord, error) {
	r, err := s.st.GetApproval(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("approval %q: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("approval %q: %w (%w)", id, ErrNotApproved, err)
	}
	return r, nil
}

// Get returns the approval with the given id, with its status at the
// current time. An unknown id gives an error matching ErrNotFound (and
// ErrNotApproved).
func (s *Service) Get(ctx context.Context, id string) (*Approval, error) {
	r, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.toApproval(r, s.now()), nil
}

// Decide records an approver's decision on a pending, unexpired approval.
// The requesting principal cannot decide their own request
// (ErrSelfApproval); an approval that is no longer pending gives
// ErrDecided, an expired one ErrExpired, an unknown one ErrNotFound.
// After the decision is stored it is recorded in Options.Audit (as is a
// refused self-approval), waiters are woken and Options.OnDecision is
// called. If the record cannot be appended, Decide returns that error
// although the decision is stored.
func (s *Service) Decide(ctx context.Context, id, approver string, approve bool, note string) error {
	switch {
	case approver == "":
		return errors.New("approval: decision without an approver")
	case !utf8.ValidString(approver) || !utf8.ValidString(note):
		return errors.New("approval: approver and note must be valid UTF-8")
	case len(note) > MaxNoteLength:
		return fmt.Errorf("approval: note is %d bytes, longer than %d", len(note), MaxNoteLength)
	}
	r, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if approver == r.Principal {
		s.log.WarnContext(ctx, "self-approval refused", "id", id, "approver", approver)
		refused := fmt.Errorf("approval %q: %w", id, ErrSelfApproval)
		// Nothing was decided: a failure to record the attempt is logged
		// by auditDecision and does not change the answer.
		_ = s.auditDecision(ctx, r, approver, approve, note, refused)
		return refused
	}
	status := store.ApprovalDenied
	if approve {
		status = store.ApprovalApproved
	}
	now := s.now()
	r, err = s.st.DecideApproval(ctx, id, status, approver, note, now)
	switch {
	case errors.Is(err, store.ErrApprovalState) && r != nil:
		if effective(r, now) == StatusExpired {
			return fmt.Errorf("approval %q: %w", id, ErrExpired)
		}
		return fmt.Errorf("approval %q is %s: %w", id, effective(r, now), ErrDecided)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("approval %q: %w", id, ErrNotFound)
	case err != nil:
		s.log.ErrorContext(ctx, "approval decision not stored", "id", id, "error", err)
		return fmt.Errorf("approval %q: storing decision: %w", id, err)
	}
	s.log.InfoContext(ctx, "approval decided", "id", id, "status", status, "approver", approver, "principal", r.Principal, "tool", r.Tool)
	aerr := s.auditDecision(ctx, r, approver, approve, note, nil)
	s.wake(id)
	if s.onDecision != nil {
		s.onDecision(s.toApproval(r, now))
	}
	return aerr
}

// auditDecision appends the audit record of approver's decision on r, or
// of its refusal (refused not nil). Without an audit log it does nothing.
func (s *Service) auditDecision(ctx context.Context, r *store.ApprovalRecord, approver string, approve bool, note string, refused error) error {
	if s.audit == nil {
		return nil
	}
	rec := &audit.Record{
		User: approver, Upstream: r.Upstream, Action: ActionDecided, Target: r.ID,
		Decision: audit.DecisionDeny, PolicyVersion: r.PolicyVersion, Policies: slices.Clone(r.Policies),
		Outcome: string(StatusDenied),
	}
	if approve {
		rec.Decision, rec.Outcome = audit.DecisionAllow, string(StatusApproved)
	}
	if len(r.Arguments) > 0 {
		rec.Args = jsontext.Value(r.Arguments)
	}
	detail := fmt.Sprintf("approval %s of a call by principal %q (client %q, session %q): tool %q, binding %s", r.ID, r.Principal, r.Client, r.Session, r.Tool, r.Binding)
	if note != "" {
		detail += fmt.Sprintf("; note: %q", note)
	}
	if refused != nil {
		rec.Outcome = "refused"
		detail = refused.Error() + "; " + detail
	}
	rec.Error = detail
	if err := s.audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.log.ErrorContext(ctx, "approval decision not audited", "id", r.ID, "approver", approver, "error", err)
		return fmt.Errorf("approval %q: the decision could not be recorded in the audit log: %w", r.ID, err)
	}
	return nil
}

// Consume uses the approval for the call r: it computes r's binding and,
// if an approved, unexpired approval with exactly that binding exists,
// marks it consumed (atomically: of concurrent calls exactly one wins)
// and returns it. Otherwise it returns an error matching ErrNotApproved
// and, when an approval with that binding exists, the most recent one's
// reason: ErrPending, ErrDenied, ErrExpired or ErrConsumed (a replay). A
// denial holds until the denied approval's ExpiresAt; after that Consume
// reports ErrExpired, so that the caller may request approval again.
// Store failures also give ErrNotApproved.
func (s *Service) Consume(ctx context.Context, r *Request) (*Approval, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil request", ErrNotApproved)
	}
	binding, err := Binding(r.Principal, r.Tool, r.Arguments, r.PolicyVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotApproved, err)
	}
	recs, err := s.st.FindApprovals(ctx, binding)
	if err != nil {
		s.log.ErrorContext(ctx, "approval lookup failed", "principal", r.Principal, "tool", r.Tool, "error", err)
		return nil, fmt.Errorf("%w: reading approvals: %w", ErrNotApproved, err)
	}
	now := s.now()
	for _, rec := range recs {
		if effective(rec, now) != StatusApproved {
			continue
		}
		got, err := s.st.ConsumeApproval(ctx, rec.ID, now)
		switch {
		case err == nil:
			s.log.InfoContext(ctx, "approval used", "id", got.ID, "principal", got.Principal, "tool", got.Tool, "approver", got.Approver)
			return s.toApproval(got, now), nil
		case errors.Is(err, store.ErrApprovalState), errors.Is(err, store.ErrNotFound):
			continue // used or removed concurrently: try the next one
		default:
			s.log.ErrorContext(ctx, "approval use not stored", "id", rec.ID, "error", err)
			return nil, fmt.Errorf("%w: using approval %q: %w", ErrNotApproved, rec.ID, err)
		}
	}
	if len(recs) > 0 {
		// Read again: a concurrent Consume may have used what we saw as
		// approved, and the caller should hear that it is a replay.
		if again, err := s.st.FindApprovals(ctx, binding); err == nil && len(again) > 0 {
			recs = again
		}
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("no approval for this call (principal %q, tool %q, policy version %.16s): %w", r.Principal, r.Tool, r.PolicyVersion, ErrNotApproved)
	}
	newest := recs[0]
	switch st := effective(newest, now); st {
	case StatusConsumed:
		s.log.WarnContext(ctx, "approval replay refused", "id", newest.ID, "principal", r.Principal, "tool", r.Tool)
		return nil, fmt.Errorf("approval %q: %w", newest.ID, ErrConsumed)
	case StatusDenied:
		if !newest.ExpiresAt.After(now) {
			// A denial holds until the approval's expiry; after that the
			// caller may ask again.
			return nil, fmt.Errorf("approval %q was denied and has expired: %w", newest.ID, ErrExpired)
		}
		return nil, fmt.Errorf("approval %q: %w", newest.ID, ErrDenied)
	case StatusPending:
		return nil, fmt.Errorf("approval %q: %w", newest.ID, ErrPending)
	case StatusExpired:
		return nil, fmt.Errorf("approval %q: %w", newest.ID, ErrExpired)
	default:
		return nil, fmt.Errorf("approval %q is %s and changed while being used: %w", newest.ID, st, ErrNotApproved)
	}
}

// Wait blocks until the approval is no longer pending (decided, expired)
// or ctx ends, and returns it. It sees decisions made through this
// Service at once and those made by other processes sharing the store
// within about a second.
func (s *Service) Wait(ctx context.Context, id string) (*Approval, error) {
	w := s.subscribe(id)
	defer func() { s.unsubscribe(id, w) }()
	for {
		a, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if a.Status != StatusPending {
			return a, nil
		}
		d := min(s.pollInterval, a.ExpiresAt.Sub(s.now()))
		d = max(d, time.Millisecond)
		t := time.NewTimer(d)
		select {
		case <-w.ch:
			t.Stop()
			// Re-subscribe so that a later wake is not missed; the
			// decision is visible in the store now.
			s.unsubscribe(id, w)
			w = s.subscribe(id)
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("approval %q: waiting for a decision: %w", id, ctx.Err())
		}
	}
}

func (s *Service) subscribe(id string) *waiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[id]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		s.waiters[id] = w
	}
	w.n++
	return w
}

func (s *Service) unsubscribe(id string, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.n--
	if w.n == 0 && s.waiters[id] == w {
		delete(s.waiters, id)
	}
}

// wake releases every Wait on id.
func (s *Service) wake(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiters[id]; w != nil {
		close(w.ch)
		delete(s.waiters, id)
	}
}

// Pending returns the approvals waiting for a decision, oldest first.
func (s *Service) Pending(ctx context.Context) ([]*Approval, error) {
	now := s.now()
	recs, err := s.st.PendingApprovals(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("approval: listing pending approvals: %w", err)
	}
	out := make([]*Approval, 0, len(recs))
	for _, r := range recs {
		out = append(out, s.toApproval(r, now))
	}
	return out, nil
}

// errNoStore is what a Service made without a store returns.
var errNoStore = errors.New("approval: no store configured")

// noStore is the store of a Service made with a nil store: every
// operation fails, so nothing is ever approved.
type noStore struct{}

func (noStore) CreateApproval(context.Context, *store.ApprovalRecord, time.Time) (*store.ApprovalRecord, bool, error) {
	return nil, false, errNoStore
}
func (noStore) GetApproval(context.Context, string) (*store.ApprovalRecord, error) {
	return nil, errNoStore
}
func (noStore) FindApprovals(context.Context, string) ([]*store.ApprovalRecord, error) {
	return nil, errNoStore
}
func (noStore) PendingApprovals(context.Context, time.Time) ([]*store.ApprovalRecord, error) {
	return nil, errNoStore
}
func (noStore) DecideApproval(context.Context, string, string, string, string, time.Time) (*store.ApprovalRecord, error) {
	return nil, errNoStore
}
func (noStore) ConsumeApproval(context.Context, string, time.Time) (*store.ApprovalRecord, error) {
	return nil, errNoStore
}
func (noStore) DeleteApprovalsExpiredBefore(context.Context, time.Time) (int, error) {
	return 0, errNoStore
}
