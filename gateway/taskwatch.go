package gateway

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/mcpgate/mcpgate/jsonrpc"
	"github.com/mcpgate/mcpgate/mcp"
	"github.com/mcpgate/mcpgate/store"
)

// The task watcher follows every task created through the gateway to its
// end, whether or not its client ever asks about it, so that the store
// and the audit log know how each task ended. Status notifications from
// the upstream are noted as they arrive (relayNotification → noteStatus);
// otherwise the watcher polls the task's upstream session at the interval
// the upstream suggested (bounded by minWatchPoll and maxWatchPoll,
// backing off on errors): one tasks/list (bounded pages) per round serves
// every task of the session when it holds several and the upstream
// supports tasks/list; otherwise, and for a task the listing lacks,
// tasks/get. There is one goroutine per upstream session (upstream,
// principal, capability profile), shared by its tasks. When a task ends,
// its result is fetched once and kept (taskresult.go). A task stops being watched at a terminal status, at its ttl,
// or when the gateway closes. At most maxWatchedTasks are watched at once.
//
// The watcher also carries out cancel requests recorded from the command
// line (`mcpgate tasks cancel`, store.TaskCancelRequested): it cancels the
// task at its upstream and records the outcome.

const (
	// maxWatchedTasks bounds the tasks watched at once per gateway.
	maxWatchedTasks = 10000
	// minWatchPoll and maxWatchPoll bound the polling interval.
	minWatchPoll = 500 * time.Millisecond
	maxWatchPoll = 30 * time.Second
	// maxResultAttempts bounds the fetches of a result that failed (the
	// upstream unreachable, a timeout), with back-off between them.
	maxResultAttempts = 5
	// defaultWatchPoll is the interval when the upstream suggests none.
	defaultWatchPoll = 5 * time.Second
	// watchCallTimeout bounds one tasks/get or tasks/cancel.
	watchCallTimeout = 30 * time.Second
)

// operatorCancelMessage is the status message of a task cancelled by an
// operator's request from the command line.
const operatorCancelMessage = "cancelled by an operator (mcpgate tasks cancel)"

// taskWatcher holds the watched tasks, grouped by upstream session.
type taskWatcher struct {
	mu     sync.Mutex
	loops  map[string]*watchLoop
	n      int  // tasks watched
	warned bool // the bound was reached and logged
	closed bool
	wg     sync.WaitGroup
	max    int // maxWatchedTasks (tests lower it)

	// gets and lists count the tasks/get and tasks/list requests the
	// watcher sent (tests and benchmarks read them).
	gets, lists atomic.Int64
}

// watchLoop is the goroutine of one upstream session and its tasks.
type watchLoop struct {
	key                string
	u                  *upstream
	principal, profile string
	tasks              map[string]*watchedTask // by gateway task id
	wake               chan struct{}
}

// watchedTask is a task followed by a watchLoop.
type watchedTask struct {
	id       string
	interval time.Duration
	next     time.Time // when to poll next
	polled   time.Time // when last polled
	expires  time.Time // zero: no ttl
	failures int
}

// pollIntervalOf bounds an upstream's suggested polling interval (in
// milliseconds; 0 when it suggested none).
func pollIntervalOf(ms float64) time.Duration {
	if ms <= 0 {
		return defaultWatchPoll
	}
	d := time.Duration(ms * float64(time.Millisecond))
	return min(max(d, minWatchPoll), maxWatchPoll)
}

// pollIntervalIn reads pollInterval from a task object.
func pollIntervalIn(task jsontext.Value) float64 {
	if v := valueOf(task, "pollInterval"); v.Kind() == '0' {
		if ms, err := strconv.ParseFloat(string(v), 64); err == nil {
			return ms
		}
	}
	return 0
}

// watchTask starts following a task the gateway just recorded.
func (g *Gateway) watchTask(u *upstream, rec *store.GatewayTask, profile string, pollMS float64) {
	if isTerminal(rec.Status) && rec.StatusMessage != store.TaskCancelRequested {
		return
	}
	w := &g.watcher
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	limit := w.max
	if limit <= 0 {
		limit = maxWatchedTasks
	}
	if w.n >= limit {
		if !w.warned {
			w.warned = true
			g.logger.Warn("task watcher: too many tasks watched; new tasks are not followed until some end (their status is known only when a client asks or the upstream notifies)",
				"limit", limit)
		}
		return
	}
	if w.loops == nil {
		w.loops = map[string]*watchLoop{}
	}
	key := u.cfg.Name + "\x00" + sessionKey(rec.Principal, profile)
	l := w.loops[key]
	if l == nil {
		l = &watchLoop{key: key, u: u, principal: rec.Principal, profile: profile, tasks: map[string]*watchedTask{}, wake: make(chan struct{}, 1)}
		w.loops[key] = l
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			g.runWatchLoop(l)
		}()
	}
	iv := pollIntervalOf(pollMS)
	now := time.Now()
	l.tasks[rec.ID] = &watchedTask{id: rec.ID, interval: iv, next: now.Add(iv), polled: now, expires: rec.ExpiresAt}
	w.n++
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// closeWatcher stops the watch loops and waits for them.
func (g *Gateway) closeWatcher() {
	w := &g.watcher
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
}

// watchedCount returns how many tasks are watched.
func (g *Gateway) watchedCount() int {
	g.watcher.mu.Lock()
	defer g.watcher.mu.Unlock()
	return g.watcher.n
}

// unwatch stops following a task.
func (g *Gateway) unwatch(l *watchLoop, id string) {
	w := &g.watcher
	w.mu.Lock()
	if _, ok := l.tasks[id]; ok {
		delete(l.tasks, id)
		w.n--
	}
	w.mu.Unlock()
	g.taskProfiles.Delete(id) // the record keeps it (taskProfile)
}

// runWatchLoop polls the tasks of one upstream session until none is
// left or the gateway closes. When the session holds several tasks and
// the upstream supports tasks/list, one listing per due interval serves
// them all (see listWatched): every task of the session is then looked at,
// so that their polls stay in step.
func (g *Gateway) runWatchLoop(l *watchLoop) {
	w := &g.watcher
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		if len(l.tasks) == 0 {
			delete(w.loops, l.key)
			w.mu.Unlock()
			return
		}
		var due, rest []*watchedTask
		now := time.Now()
		next := now.Add(maxWatchPoll)
		for _, t := range l.tasks {
			c := &watchedTask{id: t.id, interval: t.interval, next: t.next, polled: t.polled, expires: t.expires, failures: t.failures}
			if !t.next.After(now) {
				due = append(due, c)
			} else {
				rest = append(rest, c)
				if t.next.Before(next) {
					next = t.next
				}
			}
		}
		w.mu.Unlock()
		var listed map[string]jsontext.Value
		if len(due) > 0 && len(due)+len(rest) > 1 {
			listed = g.listWatched(l)
		}
		if listed == nil {
			rest = nil
		}
		for i, t := range append(due, rest...) {
			select {
			case <-g.done:
				return
			default:
			}
			keep := g.pollWatched(l, t, listed, i < len(due))
			w.mu.Lock()
			if cur, ok := l.tasks[t.id]; ok {
				if keep {
					cur.interval, cur.next, cur.polled, cur.failures = t.interval, t.next, t.polled, t.failures
				} else {
					delete(l.tasks, t.id)
					w.n--
					g.taskProfiles.Delete(t.id) // the record keeps it (taskProfile)
				}
			}
			w.mu.Unlock()
		}
		if len(due) > 0 {
			continue // recompute: polling took time
		}
		timer.Reset(time.Until(next))
		select {
		case <-g.done:
			return
		case <-l.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-timer.C:
		}
	}
}

// listWatched lists the tasks of a watch loop's upstream session with
// tasks/list (bounded pages, see upstreamTasks), by upstream task id; nil
// when the upstream does not support tasks/list or the listing failed.
func (g *Gateway) listWatched(l *watchLoop) map[string]jsontext.Value {
	cs := l.u.existing(l.principal, l.profile)
	if cs == nil {
		return nil
	}
	if t := cs.InitializeResult().Capabilities.Tasks; t == nil || t.List == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(g.life, watchCallTimeout)
	defer cancel()
	g.watcher.lists.Add(1)
	return g.upstreamTasks(ctx, l.u, cs)
}

// pollWatched looks at one watched task: it carries out a cancel request
// from the command line, keeps the result of a task that ended, stops at
// a terminal status or the ttl, and otherwise takes the task's state from
// listed (a tasks/list of its session; may be nil) or asks the upstream
// with tasks/get, noting what it learns. A task that is not due is only
// looked up in listed. It sets t.next and reports whether the task is
// still to be watched.
func (g *Gateway) pollWatched(l *watchLoop, t *watchedTask, listed map[string]jsontext.Value, due bool) bool {
	ctx := g.life
	now := time.Now()
	rec, err := g.taskStore.GetGatewayTask(ctx, t.id)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		if !due {
			return true
		}
		return g.backOff(l, t, now, err)
	}
	if rec.StatusMessage == store.TaskCancelRequested {
		g.cancelRequested(ctx, l, rec)
		return false
	}
	if isTerminal(rec.Status) {
		// Noted from a notification, a client's request, or a poll whose
		// fetch of the result failed: the result is still to be kept.
		// A failed fetch is tried again with back-off, at most
		// maxResultAttempts times and not past the task's ttl.
		if err := g.keepLateResult(ctx, l, rec); err != nil {
			if t.failures+1 < maxResultAttempts && (t.expires.IsZero() || now.Before(t.expires)) {
				return g.backOff(l, t, now, err)
			}
			l.u.logger.Warn("task watcher: the result of a task that ended could not be fetched; its owner gets it from the upstream while the upstream keeps it",
				"task", rec.ID, "attempts", t.failures+1, "error", err)
		}
		return false
	}
	if !t.expires.IsZero() && now.After(t.expires) {
		l.u.logger.Debug("task watcher: the task's ttl elapsed", "task", rec.ID)
		return false
	}
	res, inList := listed[rec.UpstreamTaskID]
	if !inList && !due {
		return true
	}
	// A status noted since the last poll (a notification, a client's
	// tasks/get) postpones the next poll.
	if !inList && rec.UpdatedAt.After(t.polled) && rec.UpdatedAt.Add(t.interval).After(now) {
		t.polled = rec.UpdatedAt
		t.next = rec.UpdatedAt.Add(t.interval)
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	cs, err := l.u.sessionAs(cctx, l.principal, l.profile)
	if err != nil {
		return g.backOff(l, t, now, err)
	}
	if !inList {
		params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
		g.watcher.gets.Add(1)
		res, err = cs.CallRaw(cctx, mcp.MethodTasksGet, params)
	}
	t.polled = time.Now()
	if err != nil {
		var we *jsonrpc.Error
		if errors.As(err, &we) && we.Code == jsonrpc.CodeInvalidParams {
			// The upstream does not know a task it was running.
			g.noteStatus(ctx, rec, string(mcp.TaskStatusFailed), lostTaskMessage)
			return false
		}
		return g.backOff(l, t, now, err)
	}
	t.failures = 0
	if ms := pollIntervalIn(res); ms > 0 {
		t.interval = pollIntervalOf(ms)
	}
	t.next = t.polled.Add(t.interval)
	status := stringOf(res, "status")
	if status == rec.Status && stringOf(res, "statusMessage") == rec.StatusMessage {
		return true // nothing to note (the common case of a listing)
	}
	// What was recorded while the upstream answered (a cancel request from
	// the command line, a notification) is not overwritten with a stale
	// record.
	if cur, err := g.taskStore.GetGatewayTask(ctx, t.id); err == nil {
		if cur.StatusMessage == store.TaskCancelRequested {
			t.next = time.Now()
			return true
		}
		rec = cur
	}
	if isTerminal(status) {
		// Watched on while the result is still to be fetched (the next
		// poll finds the terminal status recorded and tries again).
		return !g.endWatched(ctx, cs, rec, res)
	}
	if g.noteStatus(ctx, rec, status, stringOf(res, "statusMessage")) {
		// The upstream did not tell the gateway (else the record would be
		// up to date): tell the owner's connected sessions.
		if p, err := withString(res, "taskId", rec.ID); err == nil {
			g.broadcast(rec.Principal, mcp.NotificationTasksStatus, p, nil)
		}
	}
	return true
}

// endWatched notes the terminal status res reports for a watched task,
// after fetching and keeping its result (whose digest goes in the audit
// record of the status). It reports whether the result was kept (or there
// is none to keep); the status is noted either way.
func (g *Gateway) endWatched(ctx context.Context, cs *mcp.ClientSession, rec *store.GatewayTask, res jsontext.Value) bool {
	kept := true
	if rec.ResultDigest == "" {
		kept = g.fetchResult(ctx, cs, rec) == nil
	}
	if g.noteStatus(ctx, rec, stringOf(res, "status"), stringOf(res, "statusMessage")) {
		if p, err := withString(res, "taskId", rec.ID); err == nil {
			g.broadcast(rec.Principal, mcp.NotificationTasksStatus, p, nil)
		}
		return kept
	}
	g.recordResult(ctx, rec)
	return kept
}

// keepLateResult fetches and keeps the result of a task whose terminal
// status was noted without it (from a notification or a client's
// request), and returns an error when it should be tried again.
func (g *Gateway) keepLateResult(ctx context.Context, l *watchLoop, rec *store.GatewayTask) error {
	if rec.ResultDigest != "" || isLost(rec) || rec.StatusMessage == operatorCancelMessage {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	cs, err := l.u.sessionAs(cctx, l.principal, l.profile)
	if err != nil {
		return err
	}
	if err := g.fetchResult(ctx, cs, rec); err != nil {
		return err
	}
	g.recordResult(ctx, rec)
	return nil
}

// backOff schedules the next poll of a task after a failure: the interval
// doubled for each failure in a row, at most maxWatchPoll.
func (g *Gateway) backOff(l *watchLoop, t *watchedTask, now time.Time, err error) bool {
	t.failures++
	d := t.interval
	for i := 1; i < t.failures && d < maxWatchPoll; i++ {
		d *= 2
	}
	d = min(d, maxWatchPoll)
	t.next = now.Add(d)
	l.u.logger.Debug("task watcher: polling failed", "principal", l.principal, "failures", t.failures, "retry_in", d, "error", err)
	return true
}

// cancelRequested cancels at its upstream a task an operator asked to
// cancel from the command line, and records the outcome.
func (g *Gateway) cancelRequested(ctx context.Context, l *watchLoop, rec *store.GatewayTask) {
	cctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	var res jsontext.Value
	msg := operatorCancelMessage
	cs, err := l.u.sessionAs(cctx, l.principal, l.profile)
	if err == nil {
		params, _ := withString(nil, "taskId", rec.UpstreamTaskID)
		res, err = cs.CallRaw(cctx, mcp.MethodTasksCancel, params)
	}
	if err != nil {
		res = nil
		msg += "; the upstream did not confirm: " + err.Error()
		l.u.logger.Warn("cancelling a task at an operator's request", "task", rec.ID, "error", err)
	}
	g.noteStatus(ctx, rec, string(mcp.TaskStatusCancelled), msg)
	g.tellTaskOwner(rec, res)
}
