package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/gateway/config"
	"github.com/mcpgate/mcpgate/internal/jsonraw"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
	"github.com/mcpgate/mcpgate/policy/ratelimit"
	"github.com/mcpgate/mcpgate/store"
)

// The admission stage.
//
// Every request and notification a client sends, and every request an
// upstream sends back toward a client, is looked up in one of the method
// tables below before anything is forwarded. A method's entry says what
// the stage does with it:
//
//   - ruleGovern: params are decoded once and the target resolved (an
//     unknown or foreign target is a denial, recorded); policy decides
//     (the item must be visible to the principal, and the action allowed
//     with these arguments); limits apply; a "decided" audit record is
//     written; then the entry's forward runs, and a "completed" record
//     follows.
//   - ruleLocal: the protocol layer or the gateway itself answers, and
//     nothing reaches an upstream or another client (initialize, ping,
//     notifications/initialized, notifications/cancelled).
//   - ruleRefuse: refused with a JSON-RPC error (a notification is
//     dropped), and recorded.
//
// A method that is in no table is refused the same way: nothing is ever
// forwarded by default. TestMethodCoverage walks the schema of every
// supported revision and proves each method is governed or refused.

// rule says what the admission stage does with a method.
type rule int

const (
	ruleRefuse rule = iota
	ruleLocal
	ruleGovern
)

func (r rule) String() string {
	switch r {
	case ruleLocal:
		return "local"
	case ruleGovern:
		return "governed"
	}
	return "refused"
}

// methodSpec is one entry of a method table.
type methodSpec struct {
	rule rule
	// why says, for local and refused methods, why: it is the message of
	// the error a refused request gets.
	why string
	// resolve decodes the params and finds the target of a governed
	// request: the upstream, the item, the arguments policies see. An
	// error from resolve refuses the request and is recorded.
	resolve func(g *Gateway, ctx context.Context, c *call) error
	// forward dispatches an admitted request.
	forward func(g *Gateway, ctx context.Context, c *call) (any, error)
	// list marks list requests: policy decides per item (see
	// Gateway.visible), and one record is written for the list.
	list bool
}

// call is one request inside the admission stage.
type call struct {
	ds     *downstreamSession
	method string
	params jsontext.Value
	// p is params, decoded once by the stage; forwards edit it and encode
	// it once (call.encode).
	p *jsonraw.Object

	// Set by resolve.
	res  policy.Resource // what policy decides on
	args jsontext.Value  // context.arguments
	// seen are the list-time checks the target must pass: a principal can
	// only act on what it may see.
	seen []seenCheck
	up   *upstream
	rt   route              // tools/call, prompts/get
	name string             // the tool or prompt name or URI as the client gave it
	task *store.GatewayTask // tasks/get, tasks/result, tasks/cancel

	// taskReq describes the task a task-augmented tools/call would
	// create (context.task; taskpolicy.go), or nil.
	taskReq *policy.TaskContext

	// mrtr are the MRTR members of a modern retry (modern_mrtr.go).
	mrtr mrtrRetry
}

// seenCheck is a list-time policy check.
type seenCheck struct {
	action string
	res    policy.Resource
}

// Outcomes of requests refused before policy decided.
const (
	outcomeRefused  = "refused" // a method the gateway does not serve
	outcomeUnknown  = "unknown" // an unknown (or invisible, or foreign) target
	outcomeBlocked  = "blocked" // a drifted or unapproved tool
	outcomeRevoked  = "revoked" // a revoked principal
	outcomeInvalid  = "invalid" // invalid params
	outcomeLimited  = "rate_limited"
	outcomeFiltered = "filtered" // a list with items hidden by policy
)

// clientRequests is the method table of requests clients send to the
// gateway, for every supported revision (2024-11-05 to 2025-11-25).
var clientRequests = map[string]*methodSpec{
	mcp.MethodInitialize: {rule: ruleLocal, why: "answered by the gateway: opens the session, bound to the caller's principal"},
	mcp.MethodPing:       {rule: ruleLocal, why: "answered by the gateway with an empty result"},

	mcp.MethodToolsList:              {rule: ruleGovern, list: true, resolve: resolveList(kindTool), forward: forwardList},
	mcp.MethodPromptsList:            {rule: ruleGovern, list: true, resolve: resolveList(kindPrompt), forward: forwardList},
	mcp.MethodResourcesList:          {rule: ruleGovern, list: true, resolve: resolveList(kindResource), forward: forwardList},
	mcp.MethodResourcesTemplatesList: {rule: ruleGovern, list: true, resolve: resolveList(kindTemplate), forward: forwardList},
	mcp.MethodTasksList:              {rule: ruleGovern, list: true, resolve: resolveTaskList, forward: forwardTaskList},

	mcp.MethodToolsCall:            {rule: ruleGovern, resolve: resolveNamed(kindTool), forward: forwardNamed},
	mcp.MethodPromptsGet:           {rule: ruleGovern, resolve: resolveNamed(kindPrompt), forward: forwardNamed},
	mcp.MethodResourcesRead:        {rule: ruleGovern, resolve: resolveResource, forward: forwardResource},
	mcp.MethodResourcesSubscribe:   {rule: ruleGovern, resolve: resolveResource, forward: forwardResource},
	mcp.MethodResourcesUnsubscribe: {rule: ruleGovern, resolve: resolveResource, forward: forwardResource},
	mcp.MethodCompletionComplete:   {rule: ruleGovern, resolve: resolveCompletion, forward: forwardCompletion},
	mcp.MethodLoggingSetLevel:      {rule: ruleGovern, resolve: resolveSetLevel, forward: forwardSetLevel},
	mcp.MethodTasksGet:             {rule: ruleGovern, resolve: resolveTask, forward: forwardTask},
	mcp.MethodTasksResult:          {rule: ruleGovern, resolve: resolveTask, forward: forwardTask},
	mcp.MethodTasksCancel:          {rule: ruleGovern, resolve: resolveTask, forward: forwardTask},
}

// clientNotifications is the method table of notifications clients send.
var clientNotifications = map[string]*methodSpec{
	mcp.NotificationInitialized: {rule: ruleLocal, why: "handled by the gateway's session"},
	notificationCancelled:       {rule: ruleLocal, why: "cancels the client's own request in the gateway, which cancels what it forwarded"},
	mcp.NotificationRootsListChanged: {rule: ruleGovern,
		why: "relayed to the principal's sessions of upstreams whose roots setting is relay, if policy allows roots/list"},
	mcp.NotificationProgress:    {rule: ruleRefuse, why: "the gateway does not relay progress clients report on requests upstreams sent"},
	mcp.NotificationTasksStatus: {rule: ruleGovern, why: "the status of a task the client runs for an upstream session, relayed to that session only"},
}

// notificationCancelled is the method of a cancellation notification.
const notificationCancelled = "notifications/cancelled"

// upstreamRequests is the method table of requests upstreams send toward
// clients.
var upstreamRequests = map[string]*methodSpec{
	mcp.MethodPing:                  {rule: ruleLocal, why: "answered by the gateway's upstream session"},
	mcp.MethodSamplingCreateMessage: {rule: ruleGovern},
	mcp.MethodElicitationCreate:     {rule: ruleGovern},
	mcp.MethodRootsList:             {rule: ruleGovern},
	mcp.MethodTasksGet:              {rule: ruleGovern, why: "about a task a client runs for this upstream session, relayed to that client session only"},
	mcp.MethodTasksResult:           {rule: ruleGovern, why: "about a task a client runs for this upstream session, relayed to that client session only"},
	mcp.MethodTasksCancel:           {rule: ruleGovern, why: "about a task a client runs for this upstream session, relayed to that client session only"},
	mcp.MethodTasksList:             {rule: ruleGovern, why: "the tasks clients run for this upstream session"},
}

// upstreamNotifications is the method table of notifications upstreams
// send. Governed ones reach only sessions of the principal the upstream
// session belongs to, and only those concerned (the session of the call,
// the subscribers of a resource, the owner of a task).
var upstreamNotifications = map[string]*methodSpec{
	notificationCancelled:                {rule: ruleLocal, why: "cancels the upstream's own request in the gateway, which cancels what it relayed"},
	mcp.NotificationProgress:             {rule: ruleGovern, why: "to the session of the call whose progress token it carries"},
	mcp.NotificationMessage:              {rule: ruleGovern, why: "to the session of the related call, else the principal's sessions"},
	mcp.NotificationToolsListChanged:     {rule: ruleGovern, why: "rebuilds the principal's catalogue, then to the principal's sessions"},
	mcp.NotificationPromptsListChanged:   {rule: ruleGovern, why: "rebuilds the principal's catalogue, then to the principal's sessions"},
	mcp.NotificationResourcesListChanged: {rule: ruleGovern, why: "rebuilds the principal's catalogue, then to the principal's sessions"},
	mcp.NotificationResourcesUpdated:     {rule: ruleGovern, why: "to the principal's sessions whose subscription to the URI was admitted"},
	mcp.NotificationElicitationComplete:  {rule: ruleGovern, why: "to the principal's sessions"},
	mcp.NotificationTasksStatus:          {rule: ruleGovern, why: "to the sessions of the task's owner, with the gateway's task id"},
}

// handle is the admission stage of client requests: the mcp.Server calls
// it for every request but initialize and ping.
func (g *Gateway) handle(ctx context.Context, ss *mcp.ServerSession, method string, params jsontext.Value) (_ any, err error) {
	// A legacy session's record, or a modern request's own (modern.go).
	ds, done := g.requestDownstream(ctx, ss)
	defer done()
	g.sessions.touch(ds)
	c := &call{ds: ds, method: method, params: params}
	// Metrics, the request's span and the request log (tracing.go).
	ctx, o := g.observe(ctx, method, params)
	defer func() { g.finish(ctx, o, c, err) }()
	if ds.modern && (method == mcp.MethodTasksGet || method == mcp.MethodTasksUpdate || method == mcp.MethodTasksCancel) && !hasTasksExtension(ctx) {
		return nil, g.refuse(ctx, c, outcomeRefused, missingTasksExtension(method))
	}
	if ds.modern && method == mcp.MethodTasksUpdate {
		if g.revoked(ctx, ds) {
			return nil, g.refuse(ctx, c, outcomeRevoked, &jsonrpc.Error{Code: CodeRevoked, Message: "access of this user or client has been revoked"})
		}
		p, err := jsonraw.Parse(params)
		if err != nil {
			return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
		}
		c.p = p
		if c.mrtr, err = readMRTR(p); err != nil {
			return nil, g.refuse(ctx, c, outcomeInvalid, err)
		}
		return g.modernTaskUpdate(withDownstream(ctx, ds), c) // modern_tasks.go
	}
	if ds.modern && method == mcp.MethodSubscriptionsListen {
		if g.revoked(ctx, ds) {
			return nil, g.refuse(ctx, c, outcomeRevoked, &jsonrpc.Error{Code: CodeRevoked, Message: "access of this user or client has been revoked"})
		}
		return g.listen(withDownstream(ctx, ds), c) // modern_listen.go
	}
	spec := clientRequests[method]
	if spec == nil || spec.rule != ruleGovern {
		why := "it is not a method of any supported MCP revision"
		if spec != nil {
			why = spec.why
		}
		err := jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "method %q is not served by the gateway: %s", method, why)
		return nil, g.refuse(ctx, c, outcomeRefused, err)
	}
	if g.revoked(ctx, ds) {
		if !ds.modern {
			go ss.Close()
		}
		err := &jsonrpc.Error{Code: CodeRevoked, Message: "access of this user or client has been revoked"}
		return nil, g.refuse(ctx, c, outcomeRevoked, err)
	}
	ctx = withDownstream(ctx, ds)
	p, err := jsonraw.Parse(params)
	if err != nil {
		return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: %v", err))
	}
	c.p = p
	if ds.modern {
		if c.mrtr, err = readMRTR(p); err != nil {
			return nil, g.refuse(ctx, c, outcomeInvalid, err)
		}
		if err := stripModernParams(p); err != nil {
			return nil, g.refuse(ctx, c, outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid params: _meta: %v", err))
		}
		if method == mcp.MethodToolsCall {
			// A gateway task, if the client and the tool allow one
			// (modern_tasks.go).
			if err := g.modernTaskCall(ctx, ds, p); err != nil {
				return nil, g.refuse(ctx, c, outcomeRefused, err)
			}
		}
	}
	if err := spec.resolve(g, ctx, c); err != nil {
		outcome := outcomeUnknown
		var re *refusal
		if errors.As(err, &re) {
			outcome, err = re.outcome, re.err
		}
		return nil, g.refuse(ctx, c, outcome, err)
	}
	if spec.list {
		return g.admitList(ctx, c, spec)
	}
	forward := func() (any, error) { return spec.forward(g, ctx, c) }
	if ds.modern && (method == mcp.MethodTasksGet || method == mcp.MethodTasksCancel) {
		forward = func() (any, error) {
			if cs := g.modernTaskSession(ctx, c); cs != nil {
				return g.passTaskRequest(ctx, c, cs) // modern_upstream_tasks.go
			}
			out, err := spec.forward(g, ctx, c)
			return g.modernTaskAnswer(ctx, c, out, err) // modern_tasks.go
		}
	}
	out, err := g.govern(ctx, c, forward)
	return approvalAsInput(ds, out, err)
}

// refusal is an error of resolve that names its audit outcome.
type refusal struct {
	outcome string
	err     error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refused(outcome string, err error) error { return &refusal{outcome: outcome, err: err} }

// str returns the string member name of the params ("" when absent), or
// an invalid-params refusal when it is not a string.
func (c *call) str(name string) (string, error) {
	s, _, err := c.p.String(name)
	if err != nil {
		return "", invalidParams("%s: %s: %v", c.method, name, err)
	}
	return s, nil
}

// encode returns the params with the stage's edits.
func (c *call) encode() jsontext.Value { return c.p.Bytes() }

func invalidParams(format string, args ...any) error {
	return refused(outcomeInvalid, jsonrpc.NewError(jsonrpc.CodeInvalidParams, format, args...))
}

// refuse records a request refused before policy decided and returns err.
func (g *Gateway) refuse(ctx context.Context, c *call, outcome string, err error) error {
	rec := &audit.Record{
		User: c.ds.principal, Client: c.ds.clientID, Session: c.ds.id(),
		Upstream: c.res.Upstream, Action: c.method, Target: c.target(),
		Decision: audit.DecisionDeny, Outcome: outcome, Phase: audit.PhaseDecided, Error: err.Error(),
	}
	if c.args != nil {
		rec.Args = c.args
	}
	if aerr := g.auditAppend(ctx, rec); aerr != nil {
		return aerr
	}
	return err
}

// target names what a call acts on, for the audit log.
func (c *call) target() string {
	if c.res.Name != "" {
		return c.res.Name
	}
	return c.name
}

// decideCall decides a governed request: the target must be visible to
// the principal (every seen check) and the action allowed.
func (g *Gateway) decideCall(c *call) policy.Decision {
	if g.opts.Policy == nil {
		return policy.Decision{Allow: true}
	}
	for _, s := range c.seen {
		if d := g.decide(c.ds, s.action, s.res, nil); !d.Allow {
			return d
		}
	}
	return g.decideReq(c.ds, c.method, c.res, c.args, false, c.taskReq)
}

// govern runs a governed request under the controls: the policy decision
// (with an approval when the policy asks for one), limits, a "decided"
// audit record before anything is forwarded, and a "completed" record
// with the outcome.
func (g *Gateway) govern(ctx context.Context, c *call, forward func() (any, error)) (any, error) {
	if !g.enforced() {
		return forward()
	}
	ds, res, args := c.ds, c.res, c.args
	decided := g.policySpan(ctx)
	d := g.decideCall(c)
	decided(d)
	rec := &audit.Record{
		User: ds.principal, Client: ds.clientID, Session: ds.id(),
		Upstream: res.Upstream, Action: c.method, Target: res.Name,
		PolicyVersion: d.PolicyVersion, Policies: d.Policies, Args: args,
	}
	if g.opts.Limiter != nil && d.Allow {
		p := g.policyPrincipal(ds)
		key := ratelimit.Key{User: p.User, Client: ds.clientID}
		if res.Kind == policy.KindTool {
			key.Tool = res.Upstream + "/" + res.Name
		}
		if ok, after := g.opts.Limiter.Allow(key); !ok {
			rec.Decision, rec.Outcome, rec.Phase = audit.DecisionDeny, outcomeLimited, audit.PhaseDecided
			if err := g.auditAppend(ctx, rec); err != nil {
				return nil, err
			}
			data, _ := json.Marshal(struct {
				RetryAfterMs int64 `json:"retryAfterMs"`
			}{after.Milliseconds()})
			return nil, &jsonrpc.Error{Code: CodeRateLimited, Message: fmt.Sprintf("rate limit exceeded; retry in %s", after.Round(time.Millisecond)), Data: data}
		}
	}
	if c.taskReq != nil && d.Allow {
		// Task limits of the policy (taskpolicy.go); the slot is released
		// once the task is recorded or the call failed.
		release, err := g.admitTask(ctx, c, d, rec)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	switch {
	case !d.Allow:
		rec.Decision, rec.Outcome, rec.Phase = audit.DecisionDeny, audit.OutcomeDenied, audit.PhaseDecided
		if err := g.auditAppend(ctx, rec); err != nil {
			return nil, err
		}
		return nil, deniedError(c.method, res, d)
	case d.RequireApproval:
		rec.Decision = audit.DecisionApprovalRequired
		if c.taskReq != nil && g.opts.Approvals != nil {
			// A task waits for the approval (taskapproval.go).
			if out, held, err := g.approvalTask(ctx, c, d, rec); held {
				return out, err
			}
			break
		}
		if err := g.checkApproval(ctx, ds, res, args, d, rec); err != nil {
			return nil, err
		}
	default:
		rec.Decision = audit.DecisionAllow
	}
	rec.Phase = audit.PhaseDecided
	if err := g.auditAppend(ctx, rec); err != nil {
		return nil, err
	}
	start := time.Now()
	out, err := forward()
	done := &audit.Record{
		User: rec.User, Client: rec.Client, Session: rec.Session,
		Upstream: rec.Upstream, Action: rec.Action, Target: rec.Target,
		Decision: rec.Decision, PolicyVersion: rec.PolicyVersion, Policies: rec.Policies,
		Args: args, Phase: audit.PhaseCompleted, LatencyMicros: time.Since(start).Microseconds(), Outcome: audit.OutcomeOK,
	}
	if err != nil {
		done.Outcome, done.Error = audit.OutcomeError, err.Error()
	} else if raw, ok := out.(jsontext.Value); ok {
		done.Result = raw
		if c.method == mcp.MethodToolsCall {
			if isErr, _, _ := jsonraw.GetPath(raw, "isError"); string(isErr) == "true" {
				done.Outcome = "tool_error"
			}
		}
	}
	if aerr := g.auditAppend(ctx, done); aerr != nil {
		g.logger.Error("auditing a completed call failed", "action", c.method, "target", res.Name, "error", aerr)
	}
	return out, err
}

// listResult is what a list forward returns: the page and how many items
// policy hid from it.
type listResult struct {
	page   jsontext.Value
	shown  int
	hidden int
}

// admitList answers a list request: the forward filters items by policy
// (Gateway.visible); one record says how many items were shown and
// hidden.
func (g *Gateway) admitList(ctx context.Context, c *call, spec *methodSpec) (any, error) {
	out, err := spec.forward(g, ctx, c)
	if err != nil {
		if g.enforced() {
			_ = g.auditAppend(ctx, &audit.Record{User: c.ds.principal, Client: c.ds.clientID, Session: c.ds.id(),
				Action: c.method, Outcome: audit.OutcomeError, Error: err.Error()})
		}
		return nil, err
	}
	lr := out.(*listResult)
	if g.opts.Audit != nil {
		rec := &audit.Record{User: c.ds.principal, Client: c.ds.clientID, Session: c.ds.id(),
			Action: c.method, Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Phase: audit.PhaseCompleted}
		if lr.hidden > 0 {
			rec.Outcome = outcomeFiltered
			rec.Error = fmt.Sprintf("%d of %d items hidden by policy", lr.hidden, lr.hidden+lr.shown)
			if lr.shown == 0 {
				rec.Decision = audit.DecisionDeny
			}
		}
		if g.opts.Policy != nil {
			rec.PolicyVersion = g.opts.Policy.Version()
		}
		if err := g.auditAppend(ctx, rec); err != nil {
			return nil, err
		}
	}
	return lr.page, nil
}

// handleNotification is the admission stage of client notifications.
func (g *Gateway) handleNotification(ctx context.Context, ss *mcp.ServerSession, method string, params jsontext.Value) {
	ds := g.downstream(ss)
	g.sessions.touch(ds)
	spec := clientNotifications[method]
	if spec == nil || spec.rule != ruleGovern {
		why := "it is not a notification of any supported MCP revision"
		if spec != nil {
			why = spec.why
		}
		g.logger.Debug("client notification not relayed", "method", method, "why", why)
		if g.enforced() {
			_ = g.auditAppend(ctx, &audit.Record{User: ds.principal, Client: ds.clientID, Session: ss.ID(),
				Action: method, Decision: audit.DecisionDeny, Outcome: outcomeRefused, Error: why})
		}
		return
	}
	switch method {
	case mcp.NotificationRootsListChanged:
		g.rootsChanged(ctx, ds, params)
	case mcp.NotificationTasksStatus:
		g.clientTaskStatus(ctx, ds, params)
	}
}

// rootsChanged relays notifications/roots/list_changed to the upstreams
// whose roots setting is relay, each only if policy lets the principal
// give that upstream its roots.
func (g *Gateway) rootsChanged(ctx context.Context, ds *downstreamSession, params jsontext.Value) {

	for _, u := range g.upstreamList() {
		if u.rootsMode() != config.RootsRelay {
			continue
		}
		cs := u.existing(ds.principal, u.profileFor(ds))
		if cs == nil {
			continue
		}
		c := &call{ds: ds, method: mcp.NotificationRootsListChanged,
			res: policy.Resource{Kind: policy.KindClientRequest, Upstream: u.cfg.Name, Name: mcp.MethodRootsList}}
		_, _ = g.govern(ctx, c, func() (any, error) {
			if err := cs.Notify(ctx, mcp.NotificationRootsListChanged, params); err != nil {
				u.logger.Debug("relaying roots/list_changed", "error", err)
				return nil, err
			}
			return nil, nil
		})
	}
}

type downstreamKey struct{}

// withDownstream records the downstream session a request came from, so
// that an upstream session opened for it declares what that client can do.
func withDownstream(ctx context.Context, ds *downstreamSession) context.Context {
	return context.WithValue(ctx, downstreamKey{}, ds)
}

func downstreamOf(ctx context.Context) *downstreamSession {
	ds, _ := ctx.Value(downstreamKey{}).(*downstreamSession)
	return ds
}
