package gateway

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/audit"
	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/policy"
)

// Policy over async work (docs/policy.md, "Tasks").
//
// A task-augmented tools/call is decided with context.task: the ttl it
// asks for (after the gateway's MaxTaskTTL cap) and the principal's
// running tasks. The permits of an allow may set limits
// (@max_task_ttl, @max_concurrent_tasks), which the gateway enforces
// after the decision:
//
//   - a task that asks for a ttl above the limit is refused; one that
//     asks for none gets the limit as its ttl;
//   - a task that would make the principal's non-terminal tasks exceed
//     the limit is refused.
//
// Refusals are JSON-RPC errors (CodePolicyDenied) that name the limit,
// recorded as deny decisions (outcome "task_limited"). Counting is
// race-safe: a slot is reserved under a lock before the call is
// forwarded, and released once the task is recorded or the call failed,
// so two concurrent creations cannot both pass a limit of one. While a
// creation is in flight, its task can count twice for a moment (the
// record and the reservation): the count errs on the side of refusing.

// outcomeTaskLimited is the audit outcome of a task refused by a policy
// limit.
const outcomeTaskLimited = "task_limited"

// taskGovernance is the gateway's state for task policy and tasks held
// for approval.
type taskGovernance struct {
	mu sync.Mutex
	// reserved counts, per principal, task creations admitted and not
	// yet recorded.
	reserved map[string]int
	// held are the tasks the gateway holds (taskapproval.go), by gateway
	// task id, and heldByApproval maps an approval id to its task.
	held           map[string]*heldTask
	heldByApproval map[string]string
}

// taskToolKey carries the tool a task-augmented call names, so that the
// task record keeps it.
type taskToolKey struct{}

func withTaskTool(ctx context.Context, tool string) context.Context {
	return context.WithValue(ctx, taskToolKey{}, tool)
}

// taskToolOf returns the tool of the task-augmented call in ctx, or "".
func taskToolOf(ctx context.Context) string {
	s, _ := ctx.Value(taskToolKey{}).(string)
	return s
}

// resolveTaskCall prepares a task-augmented tools/call for policy: the
// configured ttl cap is applied, and c.taskReq describes the task
// (context.task).
func (g *Gateway) resolveTaskCall(ctx context.Context, c *call) error {
	if c.method != mcp.MethodToolsCall || g.opts.Policy == nil {
		return nil // without policy, forwardNamed applies the cap
	}
	if _, ok := c.p.Get("task"); !ok {
		return nil
	}
	if err := g.capTaskTTL(c.p); err != nil {
		return invalidParams("invalid task params: %v", err)
	}
	ttl, err := requestedTTL(c.p.Bytes())
	if err != nil {
		return invalidParams("invalid task params: %v", err)
	}
	c.taskReq = &policy.TaskContext{TTL: ttl, Running: g.runningTasks(ctx, c.ds.principal)}
	return nil
}

// requestedTTL reads params.task.ttl (0 when absent or null).
func requestedTTL(params jsontext.Value) (time.Duration, error) {
	task := valueOf(params, "task")
	if task.Kind() != '{' {
		return 0, fmt.Errorf("task must be an object")
	}
	ttl := valueOf(task, "ttl")
	switch ttl.Kind() {
	case 0, 'n':
		return 0, nil
	case '0':
		ms, err := strconv.ParseFloat(string(ttl), 64)
		if err != nil || ms < 0 {
			return 0, fmt.Errorf("ttl must be a non-negative number of milliseconds")
		}
		if ms > float64(100*365*24*time.Hour/time.Millisecond) {
			ms = float64(100 * 365 * 24 * time.Hour / time.Millisecond)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("ttl must be a number")
}

// runningTasks counts the principal's non-terminal, unexpired tasks in
// the store and the creations reserved and not yet recorded, for
// context.task.running: a snapshot, without the lock admitTask holds.
func (g *Gateway) runningTasks(ctx context.Context, principal string) int {
	g.taskGov.mu.Lock()
	n := g.taskGov.reserved[principal]
	g.taskGov.mu.Unlock()
	m, err := g.storedRunning(ctx, principal)
	if err != nil {
		g.logger.Warn("counting a principal's tasks", "principal", principal, "error", err)
	}
	return n + m
}

// storedRunning counts the principal's recorded tasks that have not
// ended nor expired.
func (g *Gateway) storedRunning(ctx context.Context, principal string) (int, error) {
	n := 0
	recs, err := g.taskStore.ListGatewayTasks(ctx, principal)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for _, r := range recs {
		if !isTerminal(r.Status) && (r.ExpiresAt.IsZero() || r.ExpiresAt.After(now)) {
			n++
		}
	}
	return n, nil
}

// admitTask enforces the task limits of an allow decision on a
// task-augmented call, and reserves a slot for the task. On success the
// caller must call release once the task is recorded or the call failed.
// A refusal is recorded (rec, a deny) and returned as the error.
func (g *Gateway) admitTask(ctx context.Context, c *call, d policy.Decision, rec *audit.Record) (release func(), err error) {
	lim := d.Task
	if lim.MaxTTL > 0 {
		switch {
		case c.taskReq.TTL > lim.MaxTTL:
			msg := fmt.Sprintf("tasks of tool %q are limited to %s for you (policy %q): requested %s",
				c.name, fmtDuration(lim.MaxTTL), lim.MaxTTLPolicy, fmtDuration(c.taskReq.TTL))
			return nil, g.refuseTask(ctx, rec, d, lim.MaxTTLPolicy, msg, "max_task_ttl", lim.MaxTTL.Milliseconds(), c.taskReq.TTL.Milliseconds())
		case c.taskReq.TTL == 0:
			// No ttl asked for: the policy's maximum is the task's ttl.
			if err := setTaskTTL(c, lim.MaxTTL); err != nil {
				return nil, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid task params: %v", err)
			}
		}
	}
	principal := c.ds.principal
	g.taskGov.mu.Lock()
	defer g.taskGov.mu.Unlock()
	if lim.MaxConcurrent > 0 {
		stored, err := g.storedRunning(ctx, principal)
		if err != nil {
			// Fail closed: a limit that cannot be checked is not passed.
			return nil, &jsonrpc.Error{Code: CodeControlFailed, Message: "counting your running tasks failed, so the task was not started: " + err.Error()}
		}
		if n := stored + g.taskGov.reserved[principal]; n >= lim.MaxConcurrent {
			msg := fmt.Sprintf("you have %d running tasks, the limit is %d (policy %q): wait for one to end or cancel one", n, lim.MaxConcurrent, lim.MaxConcurrentPolicy)
			return nil, g.refuseTask(ctx, rec, d, lim.MaxConcurrentPolicy, msg, "max_concurrent_tasks", int64(lim.MaxConcurrent), int64(n))
		}
	}
	if g.taskGov.reserved == nil {
		g.taskGov.reserved = map[string]int{}
	}
	g.taskGov.reserved[principal]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.taskGov.mu.Lock()
			defer g.taskGov.mu.Unlock()
			if g.taskGov.reserved[principal]--; g.taskGov.reserved[principal] <= 0 {
				delete(g.taskGov.reserved, principal)
			}
		})
	}, nil
}

// setTaskTTL sets params.task.ttl.
func setTaskTTL(c *call, ttl time.Duration) error {
	task, err := withValue(valueOf(c.p.Bytes(), "task"), "ttl", jsontext.Value(strconv.FormatInt(ttl.Milliseconds(), 10)))
	if err != nil {
		return err
	}
	c.taskReq.TTL = ttl
	return c.p.Set("task", task)
}

// refuseTask records a task refused by a policy limit and returns its
// error: CodePolicyDenied, with data naming the limit.
func (g *Gateway) refuseTask(ctx context.Context, rec *audit.Record, d policy.Decision, pol, msg, limit string, max, got int64) error {
	rec.Decision, rec.Outcome, rec.Phase, rec.Error = audit.DecisionDeny, outcomeTaskLimited, audit.PhaseDecided, msg
	rec.Policies = []string{pol}
	if err := g.auditAppend(ctx, rec); err != nil {
		return err
	}
	data, _ := json.Marshal(struct {
		Policies      []string `json:"policies"`
		PolicyVersion string   `json:"policyVersion,omitempty"`
		Reason        string   `json:"reason"`
		Limit         string   `json:"limit"`
		Max           int64    `json:"max"`
		Requested     int64    `json:"requested"`
	}{[]string{pol}, d.PolicyVersion, msg, limit, max, got})
	return &jsonrpc.Error{Code: CodePolicyDenied, Message: msg, Data: data}
}

// fmtDuration prints a duration without trailing zero units ("10m", "1h30m").
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Millisecond).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Operators' cancel requests.
//
// `mcpgate tasks cancel` runs in another process and records its request
// in the store (store.TaskCancelRequested). The gateway looks for such
// requests every cancelRequestPoll (one indexed query) and carries them
// out at once: a held task is cancelled here, a watched task's watch loop
// is woken to cancel it at its upstream, so the upstream gets tasks/cancel
// well within a second instead of at the task's next poll.

// cancelRequestPoll is how often the gateway looks for cancel requests
// recorded by the command line.
const cancelRequestPoll = 200 * time.Millisecond

// pollCancelRequests runs until the gateway closes.
func (g *Gateway) pollCancelRequests() {
	t := time.NewTicker(cancelRequestPoll)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-t.C:
		}
		recs, err := g.taskStore.ListCancelRequestedGatewayTasks(g.life)
		if err != nil {
			g.logger.Debug("looking for task cancel requests", "error", err)
			continue
		}
		for _, rec := range recs {
			if rec.Held() {
				if g.heldOf(rec.ID) != nil {
					g.cancelHeld(rec, operatorCancelMessage)
				}
				continue
			}
			g.wakeWatched(rec.ID)
		}
	}
}

// wakeWatched makes the watch loop of a task poll it now; it does
// nothing for a task this gateway does not watch.
func (g *Gateway) wakeWatched(id string) {
	w := &g.watcher
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.loops {
		t, ok := l.tasks[id]
		if !ok {
			continue
		}
		t.next = time.Time{}
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return
	}
}
