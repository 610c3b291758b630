// Package policy decides, with Cedar policies, what each principal of the
// gateway may see and do: which tools, resources, prompts and tasks appear in
// its lists, which calls it may make (down to argument values), and which
// calls need human approval.
//
// An [Engine] loads *.cedar files, validates them against the mcpgate entity
// model (see docs/policy.md), and answers [Engine.Decide] for a [Request].
// Every [Decision] carries the version (a hash) of the policy set that made
// it and the ids of the deciding policies. The package knows nothing of HTTP
// or JSON-RPC; the gateway translates MCP requests into [Request]s.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/go-json-experiment/json/jsontext"
)

// Options configures an [Engine].
type Options struct {
	// Paths are policy files or directories searched recursively for
	// *.cedar files.
	Paths []string
	// DenyByDefault decides what happens when the loaded set holds no
	// policy statement at all (no paths, empty directories, files with only
	// comments): deny every request when set, allow every request
	// otherwise. As soon as one policy is loaded, Cedar's own rule applies:
	// a request is allowed only when some permit matches and no forbid does.
	DenyByDefault bool
	// Logger receives reload events; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often Watch checks the files; zero means one
	// second.
	PollInterval time.Duration
	// Now returns the current time for requests without a Time; nil means
	// time.Now.
	Now func() time.Time
}

// Engine evaluates requests against a loaded policy set. It is safe for
// concurrent use; Reload swaps the set atomically.
type Engine struct {
	paths    []string
	deny     bool
	logger   *slog.Logger
	poll     time.Duration
	now      func() time.Time
	actions  types.EntityMap
	set      atomic.Pointer[policySet]
	reloadMu sync.Mutex
	cache    *entityCache
	// exhaustive turns off the index, context pruning and scope
	// pre-check; tests compare both paths.
	exhaustive bool
	convs      sync.Pool // *argumentsConverter
}

// NewEngine loads and validates the policies named by opts. Every problem
// is reported with its file:line:column.
func NewEngine(opts *Options) (*Engine, error) {
	if opts == nil {
		opts = &Options{}
	}
	e := &Engine{
		paths:   append([]string(nil), opts.Paths...),
		deny:    opts.DenyByDefault,
		logger:  opts.Logger,
		poll:    opts.PollInterval,
		now:     opts.Now,
		actions: buildActionEntities(),
		cache:   newEntityCache(),
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.poll <= 0 {
		e.poll = time.Second
	}
	if e.now == nil {
		e.now = time.Now
	}
	set, err := loadSet(e.paths)
	if err != nil {
		return nil, err
	}
	e.set.Store(set)
	e.logger.Info("policy set loaded", "version", set.version, "policies", set.Len(), "files", len(set.files))
	return e, nil
}

// Version returns the version of the loaded policy set: the first 16 hex
// digits of a SHA-256 over the files' contents and names (relative to the
// directory they were found in, so independent of how a path is spelled).
func (e *Engine) Version() string { return e.set.Load().version }

// Len returns the number of loaded policy statements.
func (e *Engine) Len() int { return e.set.Load().Len() }

// ErrEmptyReload is returned by Reload when the files now hold no policy
// while the current set has some: an emptied or deleted policy directory is
// far more often an accident than a decision, and with no policies the
// engine would allow everything (unless DenyByDefault). Restart to run
// without policies.
var ErrEmptyReload = errors.New("policy reload: the files hold no policy; keeping the current set (restart to run without policies)")

// Reload reads the policy files again and swaps to them atomically. On any
// error the engine keeps its current set and returns the error.
func (e *Engine) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	set, err := loadSet(e.paths)
	if err == nil && set.Len() == 0 && e.set.Load().Len() > 0 {
		err = ErrEmptyReload
	}
	if err != nil {
		e.logger.Warn("policy reload failed; keeping the current set", "version", e.Version(), "error", err)
		return err
	}
	old := e.set.Swap(set)
	if old.version != set.version {
		e.logger.Info("policy set reloaded", "old_version", old.version, "version", set.version, "policies", set.Len())
	}
	return nil
}

// Watch polls the policy files (names, sizes and modification times) every
// PollInterval and reloads when they change. It returns at once; the polling
// stops when ctx is done. onChange, if not nil, is called from the polling
// goroutine after every reload attempt that follows a change: with the new
// version, or with the kept version and the error.
func (e *Engine) Watch(ctx context.Context, onChange func(version string, err error)) {
	go func() {
		t := time.NewTicker(e.poll)
		defer t.Stop()
		lastFailed := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, fp, err := discover(e.paths)
			if err == nil && (fp == e.set.Load().fingerprint || fp == lastFailed) {
				continue
			}
			if err != nil {
				fp = "error: " + err.Error()
				if fp == lastFailed {
					continue
				}
			}
			before := e.Version()
			if err == nil {
				err = e.Reload()
			}
			if err != nil {
				lastFailed = fp
				e.logger.Warn("policy reload failed; keeping the current set", "version", before, "error", err)
				if onChange != nil {
					onChange(before, err)
				}
				continue
			}
			lastFailed = ""
			if v := e.Version(); v != before && onChange != nil {
				onChange(v, nil)
			}
		}
	}()
}

// Request is one question to the engine: may Principal perform Action on
// Resource, in this context?
type Request struct {
	Principal Principal
	// Action is the MCP method, e.g. "tools/call" or "tools/list"; see
	// [Actions].
	Action   string
	Resource Resource
	// Arguments are the tool, prompt or completion arguments (a JSON
	// object) or nil. They become context.arguments.
	Arguments jsontext.Value
	// Scopes are the token's scopes: context.scopes.
	Scopes []string
	// Time is when the request was made: context.time, context.hour,
	// context.weekday (UTC). Zero means now.
	Time time.Time
	// SourceAddr is the caller's address, "ip" or "ip:port":
	// context.source_ip (an ipaddr), absent when empty or unparsable.
	SourceAddr string
	// ClientMetadata is the client's registered metadata; selected fields
	// become attributes of the Client entity.
	ClientMetadata map[string]any
	// Task describes the task a task-augmented request would create
	// (context.task); nil for a request that creates none.
	Task *TaskContext
	// Probe asks whether the action could be allowed for some arguments:
	// the context has no arguments record, even for actions that always
	// have one, so a policy that reads context.arguments fails to
	// evaluate (listed in Decision.Errors) instead of deciding. The gateway
	// probes the call action of each item it lists.
	Probe bool
}

// Principal is who is asking: the user (if any), the client acting for the
// user or on its own, the identity provider that vouched, the session, and
// what the source of the identity says about the user.
type Principal struct {
	User    string // "" for machine-to-machine clients
	Client  Client
	IdP     string // issuer of the enterprise identity provider, or ""
	Session string
	// Groups, Roles, Email and Name are the user's identity attributes
	// (principal.groups, principal.roles, principal.email,
	// principal.name): the claims of the ID-JAG or enterprise ID token,
	// or the local user's attributes. Empty when unknown; the attributes
	// are present on every principal entity all the same.
	Groups, Roles []string
	Email, Name   string
}

// Client is the OAuth client making the request.
type Client struct {
	ID   string
	Name string
	// Registration is how the client registered: "cimd", "dynamic",
	// "pre-registered", "m2m" or "enterprise".
	Registration string
}

// Resource is what the request acts on.
type Resource struct {
	// Kind is "tool", "resource", "prompt", "upstream", "task",
	// "completion" or "client-request".
	Kind string
	// Upstream is the upstream server's name.
	Upstream string
	// Name is the tool or prompt name as the upstream knows it, the
	// resource URI, the task id, or the completion reference's name.
	Name string
}

// Decision is the engine's answer.
type Decision struct {
	Allow bool
	// RequireApproval is set on an allow when a permit that matched carries
	// @approval("required").
	RequireApproval bool
	// PolicyVersion is the version of the set that decided.
	PolicyVersion string
	// Policies are the ids of the deciding policies: the matching forbids
	// of a deny, the matching permits of an allow, the failing forbids of a
	// deny caused by an error; empty for a default deny.
	Policies []string
	// Errors are evaluation errors, "policy-id: message". A forbid that
	// fails to evaluate denies; a permit that fails grants nothing.
	Errors []string
	// Reason is one sentence naming the deciding policy, suitable for a
	// JSON-RPC error message.
	Reason string
	// Indeterminate is set on a deny that no satisfied forbid made: a
	// policy failed to evaluate (a forbid, which denies, or a permit,
	// which grants nothing). For a [Request.Probe] it means the outcome
	// depends on the arguments.
	Indeterminate bool
	// Task holds the task limits of the permits of an allow
	// (@max_task_ttl, @max_concurrent_tasks): see [TaskContext].
	Task TaskLimits
}

// Decide evaluates req against the current policy set.
func (e *Engine) Decide(req *Request) Decision {
	set := e.set.Load()
	d := Decision{PolicyVersion: set.version}
	if set.Len() == 0 {
		d.Allow = !e.deny
		if d.Allow {
			d.Reason = "allowed: no policies are loaded and deny-by-default is off"
		} else {
			d.Reason = "denied: no policies are loaded and deny-by-default is on"
		}
		return d
	}
	cr := cedarRequest{entities: requestEntities{actions: e.actions}}
	if err := req.toCedar(&cr, set, e.cache, &e.convs, e.now, e.exhaustive); err != nil {
		d.Errors = []string{err.Error()}
		d.Reason = "denied: invalid request: " + err.Error()
		return d
	}
	dec, diag := cedar.Authorize(&cr.policies, &cr.entities, cr.req)
	var failedForbids []string
	for _, de := range diag.Errors {
		d.Errors = append(d.Errors, fmt.Sprintf("%s: %s", de.PolicyID, de.Message))
		if p := set.byID[de.PolicyID]; p != nil && p.forbid {
			failedForbids = append(failedForbids, string(de.PolicyID))
		}
	}
	switch {
	case dec == cedar.Deny:
		for _, r := range diag.Reasons {
			d.Policies = append(d.Policies, string(r.PolicyID))
		}
		if len(d.Policies) > 0 {
			d.Reason = "denied by " + describe(set, d.Policies[0])
		} else if len(failedForbids) > 0 {
			d.Policies = failedForbids
			d.Reason = "denied because " + describe(set, failedForbids[0]) + " failed to evaluate"
			d.Indeterminate = true
		} else {
			d.Indeterminate = len(d.Errors) > 0
			d.Reason = fmt.Sprintf("denied by default: no policy permits %s on %s", req.Action, cr.req.Resource)
		}
	case len(failedForbids) > 0:
		d.Policies = failedForbids
		d.Reason = "denied because " + describe(set, failedForbids[0]) + " failed to evaluate"
		d.Indeterminate = true
	default:
		d.Allow = true
		var approval string
		for _, r := range diag.Reasons {
			d.Policies = append(d.Policies, string(r.PolicyID))
			if p := set.byID[r.PolicyID]; p != nil && p.approval && approval == "" {
				approval = string(r.PolicyID)
			}
			if p := set.byID[r.PolicyID]; p != nil {
				d.Task.add(p)
			}
		}
		if approval != "" {
			d.RequireApproval = true
			d.Reason = "approval required by " + describe(set, approval)
		} else {
			d.Reason = "allowed by " + describe(set, d.Policies[0])
		}
	}
	return d
}

// describe names a policy for a reason sentence: its id, its position when
// the id is an @id, and its @reason text.
func describe(set *policySet, id string) string {
	if p := set.byID[types.PolicyID(id)]; p != nil {
		return p.desc
	}
	return fmt.Sprintf("policy %q", id)
}

func describePolicy(p *compiledPolicy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %q", p.id)
	if p.id != p.pos {
		fmt.Fprintf(&b, " (%s)", p.pos)
	}
	if p.reason != "" {
		b.WriteString(": ")
		b.WriteString(p.reason)
	}
	return b.String()
}
